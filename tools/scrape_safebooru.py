#!/usr/bin/env python
"""Download safebooru posts with their tags into a resumable, verified folder.

Each image is streamed to a temporary file, checked against the post's MD5, decoded, and renamed
into OUT/images/<md5[:2]>/<md5>.<ext>; then its metadata (id, md5, file, width, height, rating,
source, tags) is appended to OUT/posts.jsonl. Rerunning the same command skips what is stored and
fetches only what is missing; a killed run leaves no partial file in place. Next step:
tools/crop_faces.py --input OUT --out FACES.

Example:
  python tools/scrape_safebooru.py --tags "1girl solo -comic" --out data/safebooru --max-posts 1000
  python tools/scrape_safebooru.py --list-tags "*_hair"    # tags with their post counts, most used first

Exit status: 0 when done (also when the search had fewer posts), 1 when the server kept failing
(everything stored so far is kept; rerun to resume), 2 for bad arguments.
"""
import argparse
import os
import sys

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.cli import interrupted_status, run_command  # noqa: E402
from chainer_dcgan.cli import non_negative_float, non_negative_int, output_folder, positive_float  # noqa: E402
from chainer_dcgan.collection import safebooru  # noqa: E402


RATINGS = ("general", "sensitive", "safe", "questionable", "explicit")


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tags", default="",
                   help='search, space separated; "-tag" excludes, meta-tags such as rating:general pass '
                        'through, id:<N starts below post N, sort: is ignored (newest first) (default: every post)')
    p.add_argument("--out", type=output_folder,
                   help="folder for images/ and posts.jsonl (created; reused to resume); required unless --list-tags")
    p.add_argument("--max-posts", type=non_negative_int,
                   help="stop when the folder holds this many posts of the search (those already there count); "
                        "required unless --list-tags")
    p.add_argument("--list-tags", metavar="PATTERN", default=None,
                   help="print the tags matching PATTERN (* or %% any run of characters, _ one) with their post "
                        "counts, most used first, one 'COUNT NAME' a line, and download nothing: the way to pick "
                        "a vocabulary for tag-conditional training")
    p.add_argument("--tag-limit", type=int, default=100, help="tags printed by --list-tags, 1..1000 (default 100)")
    p.add_argument("--base-url", default=safebooru.DEFAULT_BASE_URL,
                   help="site root (default {}; e.g. a tools/fake_safebooru.py URL)".format(safebooru.DEFAULT_BASE_URL))
    p.add_argument("--delay", type=non_negative_float, default=1.0,
                   help="seconds between requests (default 1, polite to the real site; 0 for a local server)")
    p.add_argument("--min-size", type=non_negative_int, default=0,
                   help="skip posts whose shorter side is below this many pixels (default 0)")
    p.add_argument("--rating", action="append", default=None,
                   help="keep only these ratings (general, sensitive, safe, questionable, explicit; "
                        "repeat or comma-separate; default: all)")
    p.add_argument("--page-size", type=int, default=100, help="posts per listing request, 1..1000 (default 100)")
    p.add_argument("--json", action="store_true", help="use the JSON listing instead of XML")
    p.add_argument("--retries", type=non_negative_int, default=5,
                   help="retries per request on connection errors, 5xx and 429 (default 5)")
    p.add_argument("--backoff", type=non_negative_float, default=1.0,
                   help="first retry wait in seconds, doubling each time; Retry-After wins when longer (default 1)")
    p.add_argument("--timeout", type=positive_float, default=30.0, help="network timeout in seconds (default 30)")
    p.add_argument("--max-file-mb", type=non_negative_float, default=50.0,
                   help="skip images larger than this many MiB (default 50)")
    p.add_argument("--no-progress", action="store_true", help="do not show the progress bar")
    args = p.parse_args(argv)
    if args.list_tags is None and (args.out is None or args.max_posts is None):
        p.error("--out and --max-posts are required (unless --list-tags)")
    if not 1 <= args.tag_limit <= safebooru.MAX_LIMIT:
        p.error("--tag-limit must be in 1..{}".format(safebooru.MAX_LIMIT))
    if not 1 <= args.page_size <= safebooru.MAX_LIMIT:
        p.error("--page-size must be in 1..{}".format(safebooru.MAX_LIMIT))
    if args.rating:
        args.rating = [r.strip() for item in args.rating for r in item.split(",") if r.strip()]
        unknown = sorted(set(args.rating) - set(RATINGS))
        if unknown:
            p.error("--rating: unknown rating(s) {} (known: {})".format(", ".join(unknown), ", ".join(RATINGS)))
    return args


def list_tags(client, pattern, limit):
    try:
        with client:
            tags = client.get_tags(name_pattern=pattern, limit=limit)
    except safebooru.SafebooruError as e:
        print("error: {}".format(e), file=sys.stderr)
        return 1
    sys.stdout.reconfigure(encoding="utf-8")  # tag names are UTF-8, whatever the locale
    for tag in tags:
        print("{:>9} {}".format(tag.count, tag.name))
    if not tags:
        print("no tag matches {!r}".format(pattern), file=sys.stderr)
    return 0


def main(argv=None):
    args = parse_args(argv)
    from tqdm import tqdm

    client = safebooru.SafebooruClient(
        args.base_url, delay=args.delay, retries=args.retries, backoff=args.backoff, timeout=args.timeout,
        max_file_bytes=int(args.max_file_mb * 2 ** 20))
    if args.list_tags is not None:
        return list_tags(client, args.list_tags, args.tag_limit)
    try:
        store = safebooru.PostStore(args.out)
    except (safebooru.SafebooruError, OSError) as e:
        print("error: {}".format(e), file=sys.stderr)
        return 2
    bar = tqdm(total=args.max_posts, initial=0, unit="post", disable=args.no_progress, file=sys.stderr)

    def on_post(post, outcome, summary):
        if outcome in ("stored", "already"):
            bar.update(1)
        elif isinstance(outcome, Exception):
            bar.write("skipped: {}".format(outcome), file=sys.stderr)

    try:
        with client, store:
            summary = safebooru.scrape(client, store, args.tags, args.max_posts, min_size=args.min_size,
                                       ratings=args.rating, page_size=args.page_size, json=args.json,
                                       on_post=on_post)
            held = len(store)
    except (safebooru.SafebooruError, OSError) as e:
        bar.close()
        print("error: {} (posts stored so far are kept in {}; rerun the same command to resume)".format(
            e, args.out), file=sys.stderr)
        return 1
    except KeyboardInterrupt as e:
        bar.close()
        print("error: interrupted; rerun the same command to resume", file=sys.stderr)
        return interrupted_status(e)
    bar.close()
    rejected = ", ".join("{} {}".format(n, name) for name, n in sorted(summary.rejected.items())) or "none"
    print("stored {} new, {} already there, {} filtered out, rejected: {}; {} holds {} posts".format(
        summary.stored, summary.already, summary.filtered, rejected, args.out, held))
    if summary.total < args.max_posts:
        print("the search ran out after {} of {} posts".format(summary.total, args.max_posts))
    return 0


if __name__ == "__main__":
    sys.exit(run_command(main))
