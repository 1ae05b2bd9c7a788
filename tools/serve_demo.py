#!/usr/bin/env python
"""Serve the browser demo on 127.0.0.1: the page (web/) with an export of tools/export_weights.py.

Open the printed URL in a browser. The page generates faces itself (onnxruntime-web: WebGPU, or
WebAssembly with threads, which the Cross-Origin-Opener-Policy and Cross-Origin-Embedder-Policy
headers this server sends make possible); this server only hands out files, and needs nothing
from the network. The page's JavaScript
dependencies come from `npm ci` in web/ (run by `make venv`). Stop with Ctrl-C.

Without --export, or with --export NAME, it serves a model shipped with the package
(chainer_dcgan/models/pretrained/NAME; default: default), exported once into ~/.cache/chainer_dcgan/demo ($CHAINER_DCGAN_CACHE/demo).
--screenshot PATH loads the page in headless Chromium, saves a PNG of it and exits instead of serving.

Example:
  python tools/serve_demo.py                                  # the shipped model, with its tag sliders
  python tools/export_weights.py --model result/gen_iter_10000.npz --tags tags.json --out demo_export
  python tools/serve_demo.py --export demo_export --port 8000
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import output_file, port  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.demo import shipped  # noqa: E402
from chainer_dcgan.demo.server import DemoServer, WebDemoError, screenshot  # noqa: E402
from chainer_dcgan.export import ExportError  # noqa: E402
from chainer_dcgan.models import pretrained  # noqa: E402
from chainer_dcgan.models.serialization import ModelFileError  # noqa: E402
from chainer_dcgan.zspace.tagging import TagVectorFileError  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--export", default=None,
                   help="export folder written by tools/export_weights.py, or a shipped model's name (exported on "
                        "first use into the cache; default: {!r})".format(pretrained.DEFAULT))
    p.add_argument("--screenshot", type=output_file, default=None, metavar="PNG",
                   help="save a screenshot of the loaded page (headless Chromium) to this .png file and exit")
    p.add_argument("--port", type=port, default=8000, help="TCP port on 127.0.0.1 (default 8000; 0 picks a free one)")
    p.add_argument("--web", default=None, help="the page's folder (default: web/ of this checkout)")
    p.add_argument("--quiet", action="store_true", help="do not log each request")
    args = p.parse_args(argv)
    if args.screenshot and not args.screenshot.lower().endswith(".png"):
        p.error("--screenshot {}: a screenshot is a PNG; give a .png file name".format(args.screenshot))
    return args


def main(argv=None):
    args = parse_args(argv)
    log = None if args.quiet else (lambda line: print(line, file=sys.stderr, flush=True))
    try:
        name = pretrained.DEFAULT if args.export is None else pretrained.shipped_name(args.export)
        export_dir = shipped.demo_export(name) if name is not None else args.export
        server = DemoServer(export_dir, web_dir=args.web, port=args.port, log=log)
    except (WebDemoError, pretrained.PretrainedError, ModelFileError, TagVectorFileError, ExportError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    if args.screenshot:
        with server:
            try:
                screenshot(server.url, args.screenshot)
            except WebDemoError as e:
                print("error: {}".format(e), file=sys.stderr)
                return 2
        print("wrote {}".format(args.screenshot))
        return 0
    print("serving the demo at {} (Ctrl-C stops)".format(server.url), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
