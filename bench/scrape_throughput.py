"""Scrape throughput against the local safebooru with delay 0: posts/s and MB/s.

A :class:`chainer_dcgan.testing.safebooru_server.FakeSafebooru` on 127.0.0.1 serves ``--posts`` seeded
JPEGs (~``--kb`` KB each, made from the reference illustrations, or noise where those are
absent). The reference, measured in the same run, is a bare ``requests.Session`` that lists and
downloads the same files without verifying or storing them; the scraper's figure includes MD5
checks, full decodes, fsyncs and ``posts.jsonl``. Times are printed, never asserted.

Usage::

    python bench/scrape_throughput.py [--posts 200] [--page-size 100] [--json]
"""
import argparse
import io
import os
import shutil
import sys
import tempfile
import time

import numpy
import requests
from PIL import Image

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from chainer_dcgan.collection import safebooru  # noqa: E402
from chainer_dcgan.testing.safebooru_server import FakeSafebooru, ServedPost  # noqa: E402

SAMPLES = os.path.join(ROOT, "..", "shared", "data", "anime_samples")


def make_posts(n, seed=0):
    rs = numpy.random.RandomState(seed)
    if os.path.isdir(SAMPLES):
        bases = [Image.open(os.path.join(SAMPLES, f)).convert("RGB") for f in sorted(os.listdir(SAMPLES))]
    else:
        bases = [Image.fromarray(rs.randint(0, 256, (512, 512, 3), dtype=numpy.uint8))]
    posts = []
    for i in range(n):
        img = bases[i % len(bases)]
        # a different crop of each so every file (and MD5) differs
        x, y = rs.randint(0, max(1, img.width // 8)), rs.randint(0, max(1, img.height // 8))
        buf = io.BytesIO()
        img.crop((x, y, img.width - x // 2, img.height - y // 2)).save(buf, "JPEG", quality=90)
        posts.append(ServedPost(id=i + 1, tags=["1girl", "solo"], data=buf.getvalue()))
    return posts


def raw_download(url, page_size, as_json):
    """The reference: list and fetch every file with a bare session, no checks, nothing stored."""
    session = requests.Session()
    last, total = None, 0
    while True:
        tags = "1girl" + ("" if last is None else " id:<{}".format(last))
        params = {"page": "dapi", "s": "post", "q": "index", "limit": page_size, "tags": tags}
        if as_json:
            params["json"] = 1
        page = safebooru.parse_posts(session.get(url + "/index.php", params=params).content)
        if not page.posts:
            return total
        for post in page.posts:
            total += len(session.get(post.file_url).content)
        last = page.posts[-1].id


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--posts", type=int, default=200, help="posts served (default 200)")
    p.add_argument("--page-size", type=int, default=100, help="listing limit (default 100)")
    p.add_argument("--json", action="store_true", help="use the JSON listing")
    args = p.parse_args(argv)
    posts = make_posts(args.posts)
    megabytes = sum(len(p.data) for p in posts) / 1e6
    tmp = tempfile.mkdtemp(prefix="scrape_bench_")
    try:
        with FakeSafebooru(posts) as server:
            print("cores: {} (os.cpu_count), usable: {}".format(os.cpu_count(), len(os.sched_getaffinity(0))))
            print("posts: {}, {:.1f} MB, mean {:.0f} KB, listing {}".format(
                len(posts), megabytes, megabytes * 1e3 / len(posts), "JSON" if args.json else "XML"))
            start = time.perf_counter()
            raw_bytes = raw_download(server.url, args.page_size, args.json)
            raw_t = time.perf_counter() - start
            client = safebooru.SafebooruClient(server.url, delay=0)
            start = time.perf_counter()
            with client, safebooru.PostStore(os.path.join(tmp, "out")) as store:
                summary = safebooru.scrape(client, store, "1girl", args.posts, page_size=args.page_size,
                                           json=args.json)
            scrape_t = time.perf_counter() - start
        assert summary.stored == len(posts) and raw_bytes / 1e6 == megabytes
        for label, t in (("bare requests (reference)", raw_t), ("scraper (verified, stored)", scrape_t)):
            print("{:>27}: {:6.2f} s, {:7.1f} posts/s, {:6.1f} MB/s".format(
                label, t, len(posts) / t, megabytes / t))
        print("ratio scraper / bare requests: {:.2f}".format(raw_t / scrape_t))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
