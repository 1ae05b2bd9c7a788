#!/usr/bin/env python
"""Serve a folder of images through safebooru's post and tag API on 127.0.0.1, to try the pipeline offline.

It answers as the real site does (see docs/data.rst): XML and JSON listings, the tag list with
counts (page=dapi&s=tag&q=index), thumbnails and samples, the deep-paging refusal. Real clients
such as gallery-dl read it as a Gelbooru 0.2 site:
  gallery-dl "gelbooru_v02:http://127.0.0.1:8080/index.php?page=post&s=list&tags=renpy"

The folder is either a scrape (OUT of tools/scrape_safebooru.py: its posts.jsonl gives ids, tags,
ratings and sources) or plain images, which get ids 1, 2, ... by name and their file-name words as
tags. --synthetic N adds N pictures with faces of the embedded procedural dataset, so the
pipeline can be tried with no images at all. Faults can be injected for testing clients.

Example:
  python tools/fake_safebooru.py --folder ../shared/data/anime_samples --port 8080 &
  python tools/scrape_safebooru.py --base-url http://127.0.0.1:8080 --delay 0 --tags renpy \\
      --max-posts 10 --out /tmp/scrape
  python tools/fake_safebooru.py --synthetic 200 --port 8080

Fault syntax: KIND[:key=value,...], keys target (api|image|any), times (N or all), skip, post_id,
retry_after, reason. Kinds: rate_limit, unavailable, reset, truncate, bad_md5, api_error, empty_page.
E.g. --fault rate_limit:times=3,retry_after=2 --fault reset:target=image,times=all
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.cli import run_command  # noqa: E402
from chainer_dcgan.cli import non_negative_float, non_negative_int, port, seed  # noqa: E402
from chainer_dcgan.testing.safebooru_server import FakeSafebooru, Fault, posts_from_folder, synthetic_posts  # noqa: E402


def fault(text):
    try:
        return Fault.parse(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--folder", default=None, help="images to serve, optionally with posts.jsonl")
    p.add_argument("--synthetic", type=non_negative_int, default=0,
                   help="also serve this many synthetic scenes (faces of the embedded dataset pasted into "
                        "320x240 pictures, tagged), after the folder's ids")
    p.add_argument("--seed", type=seed, default=0, help="seed of the synthetic scenes (default 0)")
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    p.add_argument("--port", type=port, default=0, help="port (default 0: a free one, printed at start)")
    p.add_argument("--fault", action="append", default=[], type=fault,
                   help="inject a fault (repeatable); see the syntax above")
    p.add_argument("--max-offset", type=int, default=200000,
                   help="refuse limit*pid beyond this, like the site (default 200000)")
    p.add_argument("--chunk-delay", type=non_negative_float, default=0.0,
                   help="seconds between 64 KiB chunks of an image, to imitate a slow link (default 0)")
    args = p.parse_args(argv)
    if args.folder is None and args.synthetic <= 0:
        p.error("give --folder, --synthetic N, or both")
    return args


def main(argv=None):
    args = parse_args(argv)
    try:
        posts = posts_from_folder(args.folder) if args.folder else []
        posts += synthetic_posts(args.synthetic, seed=args.seed, start_id=max((p.id for p in posts), default=0) + 1)
    except (OSError, ValueError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    server = FakeSafebooru(posts, host=args.host, port=args.port, faults=args.fault, max_offset=args.max_offset,
                           chunk_delay=args.chunk_delay)
    print("serving {} posts at {}".format(len(posts), server.url), flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
