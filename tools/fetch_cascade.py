#!/usr/bin/env python
"""Download nagadomi's lbpcascade_animeface.xml (MIT) for tools/crop_faces.py and cache it.

The file is checked against its known SHA-256 before it is stored (atomically); a mismatch stores
nothing and exits 1.

Example:
  python tools/fetch_cascade.py              # into the cache, where crop_faces.py looks
  python tools/fetch_cascade.py --out lbpcascade_animeface.xml
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import output_file, positive_float  # noqa: E402
from chainer_dcgan.collection import faces  # noqa: E402


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--url", default=faces.CASCADE_URL, help="where to download it from (default: upstream on GitHub)")
    p.add_argument("--out", type=output_file, default=None,
                   help="where to store it (default {}; $CHAINER_DCGAN_CACHE moves the cache)".format(
                       faces.default_cascade_path()))
    p.add_argument("--sha256", default=faces.CASCADE_SHA256,
                   help="expected SHA-256 (default: upstream's file, {})".format(faces.CASCADE_SHA256))
    p.add_argument("--timeout", type=positive_float, default=60.0, help="network timeout in seconds (default 60)")
    p.add_argument("--force", action="store_true", help="download even when a good copy is already there")
    return p.parse_args(argv)


def main(argv=None):
    import hashlib

    import requests

    args = parse_args(argv)
    dest = args.out or faces.default_cascade_path()
    if not args.force and os.path.isfile(dest):
        with open(dest, "rb") as f:
            if hashlib.sha256(f.read()).hexdigest() == args.sha256:
                print("already there: {}".format(dest))
                return 0
    try:
        path = faces.fetch_cascade(dest, url=args.url, sha256=args.sha256, timeout=args.timeout)
    except (faces.CascadeChecksumError, requests.RequestException, OSError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 1
    print("stored {}".format(path))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
