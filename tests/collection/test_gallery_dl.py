"""A real client against the local safebooru: gallery-dl (PyPI) downloads a tag search, offline.

gallery-dl knows the site's engine (Gelbooru 0.2) and reads it the way it reads safebooru.org:
the XML listing paged by ``pid``, ``created_at`` parsed with the site's date format, the files
from ``file_url``. Its view of every post must be the server's: the same files, tags and dates.
"""
import datetime
import glob
import hashlib
import json
import os
import subprocess
import sys

import pytest

from chainer_dcgan.testing.safebooru_server import ServedPost
from conftest import make_served_posts

pytest.importorskip("gallery_dl", reason="gallery-dl is a test dependency: pip install -e '.[test]'")

TAGS = ("1girl", "猫耳", "café", "ö_(ü)")  # non-ASCII tags must come through unchanged


def run_gallery_dl(url, out, home, timeout=120):
    """gallery-dl in a subprocess, without the user's configuration; ``CompletedProcess``."""
    env = dict(os.environ, HOME=str(home), XDG_CONFIG_HOME=str(home))
    return subprocess.run([sys.executable, "-m", "gallery_dl", "--config-ignore", "--write-metadata", "-d", str(out),
                           url], capture_output=True, text=True, timeout=timeout, env=env)


def test_gallery_dl_downloads_a_tag_search(safebooru_site, tmp_path):
    import io

    from PIL import Image
    posts = make_served_posts(130, tags=TAGS)  # two of gallery-dl's 100-post pages
    buf = io.BytesIO()
    Image.new("RGB", (1000, 700), (200, 120, 40)).save(buf, "JPEG")
    posts.append(ServedPost(id=500, tags=["1girl", "大きい"], data=buf.getvalue()))  # wide: has a sample
    posts.append(ServedPost(id=501, tags=["scenery"], data=posts[0].data, image="other.jpg"))  # not in the search
    server = safebooru_site(posts, utc_offset_minutes=60)
    url = "gelbooru_v02:{}/index.php?page=post&s=list&tags=1girl".format(server.url)
    proc = run_gallery_dl(url, tmp_path / "out", tmp_path / "home")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert "warning" not in proc.stderr.lower(), proc.stderr[-3000:]

    wanted = {p.id: p for p in posts if "1girl" in p.tags}
    seen = {}
    for meta_path in glob.glob(str(tmp_path / "out" / "**" / "*.json"), recursive=True):
        with open(meta_path, encoding="utf-8") as f:
            meta = json.load(f)
        with open(meta_path[:-len(".json")], "rb") as f:
            seen[int(meta["id"])] = (meta, hashlib.md5(f.read()).hexdigest())
    assert sorted(seen) == sorted(wanted)
    for post_id, (meta, md5) in seen.items():
        post = wanted[post_id]
        assert md5 == post.md5 == meta["md5"]
        assert meta["tags"].split() == post.tags  # UTF-8 as declared, not Latin-1 mojibake
        when = datetime.datetime.fromtimestamp(post.created, datetime.timezone.utc).replace(tzinfo=None)
        assert meta["date"] == str(when)  # created_at parsed with the site's format, in UTC
        assert (int(meta["width"]), int(meta["height"])) == (post.width, post.height)
        assert meta["rating"] == post.rating[:1] and int(meta["change"]) == post.change
    assert seen[500][0]["sample_url"].endswith("/samples/0/sample_{}.jpg".format(wanted[500].stem))
    assert seen[500][0]["search_count"] == len(wanted)
    listings = [r for r in server.requests if r.path == "/index.php"]
    assert [r.query["pid"] for r in listings] == [["0"], ["1"]]
    assert {r.headers.get("User-Agent", "").split("/")[0] for r in listings} != {""}
