"""The browser demo's speed in headless Chromium: model load time and milliseconds per face, beside Chainer.

One run exports a generator (``--model``, or an untrained seeded one: the speed does not depend on
the weights) with ``chainer_dcgan.export``, serves it with ``chainer_dcgan.demo.server.DemoServer``
on 127.0.0.1, and measures in Debian's Chromium (headless, no GPU):

* load: navigation start -> first face on the canvas, each in a freshly started browser (cold: no
  HTTP or WebAssembly code cache), ``--loads`` times per model file, with its parts (page script
  running, WebAssembly compiled, weights downloaded, onnxruntime session ready), and a second visit
  in the same browser (caches warm);
* per face: one ``session.run`` for one z (batch 1, as the page draws), mean over ``--faces`` after a
  warm-up, with 1 thread, all cores (up to 4) and the page's default (onnxruntime's: half the cores);
* Chainer CPU: one face in test mode (``chainer_dcgan.zspace.generate``, batch 1), mean over
  ``--faces`` after a warm-up, in the same rounds (interleaved, so a busy machine slows both alike).

Medians over ``--rounds`` are printed with ratios (browser / Chainer); nothing is asserted.
The issue's goal for this machine's CPU: load < 2 s, < 50 ms per face.

Usage::

    python bench/web_demo.py [--model gen.npz] [--loads 3] [--rounds 3] [--faces 20] [--float16]
"""
import argparse
import os
import platform
import statistics
import sys
import tempfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.dirname(HERE))

import numpy  # noqa: E402

from chainer_dcgan import export, zspace  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.demo.server import DemoServer, launch_chromium  # noqa: E402
from chainer_dcgan.models import Generator, sample_z  # noqa: E402
from chainer_dcgan.models.serialization import load_generator  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="generator weights (npz/HDF5); default: untrained, seeded")
    p.add_argument("--loads", type=int, default=3, help="cold page loads per model file (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of per-face timing (default 3)")
    p.add_argument("--faces", type=int, default=20, help="faces per timing round (default 20)")
    p.add_argument("--float16", action="store_true", help="also time the float16 export (generator.f16.onnx)")
    p.add_argument("--seed", type=int, default=0, help="seeds the untrained generator and z (default 0)")
    args = p.parse_args(argv)
    for name in ("loads", "rounds", "faces"):
        if getattr(args, name) < 1:
            p.error("--{} must be >= 1".format(name))
    return args


def cold_load(playwright, url):
    """Milliseconds from navigation start: dict with load (first face drawn), the page's marks, and
    reload: the load of a second visit in the same browser (HTTP and WebAssembly code caches warm)."""
    browser = launch_chromium(playwright)
    try:
        page = browser.new_page()
        page.goto(url)
        page.evaluate("dcganDemo.ready")
        result = dict(page.evaluate("dcganDemo.marks"), load=page.evaluate("dcganDemo.loadMs"),
                      threads=page.evaluate("dcganDemo.threads"), version=browser.version)
        page.reload()
        page.evaluate("dcganDemo.ready")
        result["reload"] = page.evaluate("dcganDemo.loadMs")
        return result
    finally:
        browser.close()


def chainer_ms_per_face(gen, faces, rs):
    zspace.generate(gen, sample_z(1, random_state=rs), batch_size=1)
    t0 = time.perf_counter()
    for _ in range(faces):
        zspace.generate(gen, sample_z(1, random_state=rs), batch_size=1)
    return (time.perf_counter() - t0) * 1000 / faces


def main(argv=None):
    args = parse_args(argv)
    from playwright.sync_api import sync_playwright

    if args.model:
        gen = load_generator(args.model)
    else:
        numpy.random.seed(args.seed)
        gen = Generator()
    rs = numpy.random.RandomState(args.seed)
    with tempfile.TemporaryDirectory() as out, sync_playwright() as pw:
        t0 = time.perf_counter()
        manifest = export.export_demo(gen, out, float16=args.float16)
        export_s = time.perf_counter() - t0
        with DemoServer(out) as server:
            models = [("f32", export.MODEL_F32)] + ([("f16", export.MODEL_F16)] if args.float16 else [])
            loads = {}
            for key, name in models:
                loads[name] = [cold_load(pw, server.url + "?model=" + key) for _ in range(args.loads)]
            version = loads[export.MODEL_F32][0]["version"]
            default_threads = loads[export.MODEL_F32][0]["threads"]
            browser = launch_chromium(pw)
            pages = {}
            for threads in sorted({1, default_threads, min(4, os.cpu_count() or 1)}):
                pages[threads] = browser.new_page()
                pages[threads].goto(server.url + "?threads={}".format(threads))
                pages[threads].evaluate("dcganDemo.ready")
            web = {t: [] for t in pages}
            chainer_ms = []
            for _ in range(args.rounds):
                for t, page in pages.items():
                    web[t].append(page.evaluate("n => dcganDemo.bench(n)", args.faces))
                chainer_ms.append(chainer_ms_per_face(gen, args.faces, rs))
            browser.close()

    print("chainer-dcgan web demo: headless Chromium {}, {} CPU(s), {}, load average {:.2f}".format(
        version, os.cpu_count(), platform.processor() or platform.machine(), os.getloadavg()[0]))
    print("export: {:.2f} s (fold, ONNX, onnxruntime check)".format(export_s))
    for _, name in models:
        entry = manifest["models"][name]
        runs = loads[name]
        med = statistics.median(r["load"] for r in runs)
        print("load {} ({:.1f} MB {}): median {:.0f} ms of {} cold loads [{}]".format(
            name, entry["bytes"] / 1e6, entry["dtype"], med, len(runs),
            ", ".join("{:.0f}".format(r["load"]) for r in runs)))
        print("  median marks from navigation start: script running {:.0f} ms, WebAssembly compiled {:.0f} ms, "
              "weights downloaded {:.0f} ms, session ready {:.0f} ms, first face {:.0f} ms".format(
                  *(statistics.median(r[k] for r in runs) for k in ("start", "wasm", "weights", "session", "load"))))
        print("  second visit (browser caches warm): median {:.0f} ms [{}]".format(
            statistics.median(r["reload"] for r in runs), ", ".join("{:.0f}".format(r["reload"]) for r in runs)))
    c = statistics.median(chainer_ms)
    print("per face (batch 1), median of {} rounds x {} faces:".format(args.rounds, args.faces))
    print("  Chainer CPU (test mode, numpy): {:.1f} ms [{}]".format(
        c, ", ".join("{:.1f}".format(x) for x in chainer_ms)))
    for t, times in web.items():
        m = statistics.median(times)
        print("  browser, {} thread(s){}: {:.1f} ms [{}]  ratio browser/Chainer {:.2f}".format(
            t, " (page default)" if t == default_threads else "", m,
            ", ".join("{:.1f}".format(x) for x in times), m / c))
    print("goal: load < 2000 ms, < 50 ms per face")
    return 0


if __name__ == "__main__":
    sys.exit(main())
