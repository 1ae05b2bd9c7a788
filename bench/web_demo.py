"""The browser demo's speed in headless Chromium: load time, page weight, milliseconds per face and
per 100-face grid for each backend it can run here, and a slider move to a new face, beside Chainer.

One run exports a generator (``--model``, or an untrained seeded one: the speed does not depend on
the weights) with ``chainer_dcgan.export``, serves it with ``chainer_dcgan.demo.server.DemoServer``
on 127.0.0.1 (which sends COOP/COEP, so the page may use WebAssembly threads), and measures in
Debian's Chromium (headless):

* load: navigation start -> first face on the canvas, each in a freshly started browser (cold: no
  HTTP or WebAssembly code cache), ``--loads`` times per model file, with its parts (page script
  running, WebAssembly compiled, weights downloaded, onnxruntime session ready), and a second visit
  in the same browser (caches warm); page weight: the bytes of every response of a cold load
  (the page's worker included);
* per face: one ``session.run`` for one z (batch 1, as the page draws), mean over ``--faces`` after a
  warm-up; per grid: one run of a batch of 100 (the page's 10x10 grid), mean over ``--grids``; with
  WebAssembly on 1 thread, on every core (up to 4) and the page's default;
* a slider move: from the input event to the new face on the canvas (compose, run, paint), mean
  over ``--faces`` moves;
* WebGPU: headless Chromium gets an adapter only with ``--enable-unsafe-webgpu``, and then it is
  SwiftShader (WebGPU on the CPU); the page skips such an adapter unless ``backend=webgpu`` asks,
  and this measures it so asked (``--webgpu-faces`` faces and one grid; ``--no-webgpu`` skips it);
* Chainer CPU: one face in test mode (``chainer_dcgan.zspace.generate``, batch 1), mean over
  ``--faces`` after a warm-up, in the same rounds (interleaved, so a busy machine slows both alike).

Medians over ``--rounds`` are printed with ratios (browser / Chainer) and the load average; nothing
is asserted. The issue's goals for this machine's CPU: load < 2 s, a slider move < 50 ms, a 100-face
grid < 1.5 s.

Usage::

    python bench/web_demo.py [--model gen.npz] [--loads 3] [--rounds 3] [--faces 20] [--grids 2] [--float16]
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
from chainer_dcgan.demo.server import CHROMIUM_ARGS, DemoServer, find_chromium, launch_chromium  # noqa: E402
from chainer_dcgan.models import Generator, sample_z  # noqa: E402
from chainer_dcgan.models.serialization import load_generator  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--model", default=None, help="generator weights (npz/HDF5); default: untrained, seeded")
    p.add_argument("--loads", type=int, default=3, help="cold page loads per model file (default 3)")
    p.add_argument("--rounds", type=int, default=3, help="rounds of per-face timing (default 3)")
    p.add_argument("--faces", type=int, default=20, help="faces per timing round (default 20)")
    p.add_argument("--grids", type=int, default=2, help="100-face grid runs per timing round (default 2)")
    p.add_argument("--webgpu-faces", type=int, default=3, help="faces timed on WebGPU (default 3)")
    p.add_argument("--no-webgpu", action="store_true", help="do not time WebGPU (SwiftShader here: slow)")
    p.add_argument("--float16", action="store_true", help="also time the float16 export (generator.f16.onnx)")
    p.add_argument("--seed", type=int, default=0, help="seeds the untrained generator and z (default 0)")
    args = p.parse_args(argv)
    for name in ("loads", "rounds", "faces", "grids", "webgpu_faces"):
        if getattr(args, name) < 1:
            p.error("--{} must be >= 1".format(name))
    return args


def cold_load(playwright, url):
    """Milliseconds from navigation start: dict with load (first face drawn), the page's marks,
    bytes and files (every response), and reload: the load of a second visit in the same browser
    (HTTP and WebAssembly code caches warm)."""
    browser = launch_chromium(playwright)
    try:
        page = browser.new_page()
        sizes = {}

        def count(response):
            length = response.headers.get("content-length")
            sizes[response.url] = int(length) if length else len(response.body())

        page.on("response", count)
        page.goto(url)
        page.evaluate("dcganDemo.ready")
        result = dict(page.evaluate("dcganDemo.marks"), load=page.evaluate("dcganDemo.loadMs"),
                      threads=page.evaluate("dcganDemo.threads"), backend=page.evaluate("dcganDemo.backend"),
                      version=browser.version, bytes=sum(sizes.values()), files=len(sizes),
                      largest=sorted(sizes.items(), key=lambda kv: -kv[1])[:3])
        page.reload()
        page.evaluate("dcganDemo.ready")
        result["reload"] = page.evaluate("dcganDemo.loadMs")
        return result
    finally:
        browser.close()


SLIDER_MOVE = """async (n) => {
    const el = document.getElementById('tag-0') || document.getElementById('strength');
    let total = 0;
    for (let i = 0; i < n; i++) {
        const t0 = performance.now();
        el.value = String(el.id === 'strength' ? 1 - (i % 2) * 0.01 : ((i % 20) - 10) / 20);
        el.dispatchEvent(new Event('input'));
        await dcganDemo.idle();
        total += performance.now() - t0;
    }
    return total / n;
}"""


def webgpu_times(playwright, url, faces):
    """(backend, ms per face, ms per 100-face grid) with ``backend=webgpu`` in a browser with WebGPU on,
    or (reason, None, None) where there is no adapter."""
    args = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + ["--enable-unsafe-webgpu"]
    browser = playwright.chromium.launch(executable_path=find_chromium(), args=args)
    try:
        page = browser.new_page()
        page.goto(url + "?backend=webgpu")
        adapter = page.evaluate("navigator.gpu ? navigator.gpu.requestAdapter().then((a) => a && "
                                "[a.info.vendor, a.info.architecture].join(' ')) : null")
        if not adapter:
            return "no WebGPU adapter in headless Chromium", None, None
        page.evaluate("dcganDemo.ready")
        backend = "{} ({})".format(page.evaluate("dcganDemo.backend"), adapter)
        return backend, page.evaluate("n => dcganDemo.bench(n, 1)", faces), page.evaluate("dcganDemo.bench(1, 100)")
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
            for threads in sorted({1, 2, default_threads, min(4, os.cpu_count() or 1)}):
                pages[threads] = browser.new_page()
                pages[threads].goto(server.url + "?threads={}".format(threads))
                pages[threads].evaluate("dcganDemo.ready")
            web = {t: [] for t in pages}
            grid = {t: [] for t in pages}
            move = {t: [] for t in pages}
            chainer_ms, load_avg = [], []
            for _ in range(args.rounds):
                for t, page in pages.items():
                    web[t].append(page.evaluate("n => dcganDemo.bench(n, 1)", args.faces))
                    grid[t].append(page.evaluate("n => dcganDemo.bench(n, 100)", args.grids))
                    move[t].append(page.evaluate(SLIDER_MOVE, args.faces))
                chainer_ms.append(chainer_ms_per_face(gen, args.faces, rs))
                load_avg.append(os.getloadavg()[0])
            browser.close()
            gpu = None if args.no_webgpu else webgpu_times(pw, server.url, args.webgpu_faces)

    print("chainer-dcgan web demo: headless Chromium {}, {} CPU(s), {}, load average {} (1 min, per round)".format(
        version, os.cpu_count(), platform.processor() or platform.machine(),
        ", ".join("{:.2f}".format(x) for x in load_avg)))
    print("export: {:.2f} s (fold, ONNX, onnxruntime check)".format(export_s))
    for _, name in models:
        entry = manifest["models"][name]
        runs = loads[name]
        med = statistics.median(r["load"] for r in runs)
        print("load {} ({:.1f} MB {}) on {}: median {:.0f} ms of {} cold loads [{}]".format(
            name, entry["bytes"] / 1e6, entry["dtype"], runs[0]["backend"], med, len(runs),
            ", ".join("{:.0f}".format(r["load"]) for r in runs)))
        print("  median marks from navigation start: script running {:.0f} ms, WebAssembly compiled {:.0f} ms, "
              "weights downloaded {:.0f} ms, session ready {:.0f} ms, first face {:.0f} ms".format(
                  *(statistics.median(r[k] for r in runs) for k in ("start", "wasm", "weights", "session", "load"))))
        print("  second visit (browser caches warm): median {:.0f} ms [{}]".format(
            statistics.median(r["reload"] for r in runs), ", ".join("{:.0f}".format(r["reload"]) for r in runs)))
        print("  page weight: {:.1f} MB in {} responses; largest: {}".format(
            runs[0]["bytes"] / 1e6, runs[0]["files"], ", ".join("{} {:.1f} MB".format(
                url.rsplit("/", 1)[-1], size / 1e6) for url, size in runs[0]["largest"])))
    c = statistics.median(chainer_ms)
    print("median of {} rounds: per face (batch 1, {} faces), per 100-face grid ({} runs), slider move to a "
          "new face ({} moves):".format(args.rounds, args.faces, args.grids, args.faces))
    print("  Chainer CPU (test mode, numpy): {:.1f} ms per face [{}]".format(
        c, ", ".join("{:.1f}".format(x) for x in chainer_ms)))
    for t in web:
        m = statistics.median(web[t])
        print("  WebAssembly, {} thread(s){}: {:.1f} ms per face [{}] (browser/Chainer {:.2f}); grid {:.0f} ms [{}]; "
              "slider move {:.1f} ms [{}]".format(
                  t, " (page default)" if t == default_threads else "", m,
                  ", ".join("{:.1f}".format(x) for x in web[t]), m / c, statistics.median(grid[t]),
                  ", ".join("{:.0f}".format(x) for x in grid[t]), statistics.median(move[t]),
                  ", ".join("{:.1f}".format(x) for x in move[t])))
    if gpu is None:
        print("  WebGPU: not measured (--no-webgpu)")
    elif gpu[1] is None:
        print("  WebGPU: absent ({})".format(gpu[0]))
    else:
        print("  {} (asked for with backend=webgpu): {:.0f} ms per face, {:.0f} ms per grid".format(*gpu))
    print("goals: load < 2000 ms, slider move < 50 ms, 100-face grid < 1500 ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
