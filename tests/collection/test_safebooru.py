"""The safebooru client, the verified store and the scrape loop, against the local safebooru."""
import contextlib
import hashlib
import io
import os
import re
import signal
import subprocess
import sys
import time

import pytest
from PIL import Image

from chainer_dcgan.collection import safebooru
from chainer_dcgan.collection.safebooru import (ApiError, ChecksumMismatch, FileTooLarge, HTTPStatusError, NotAnImage, Post,
                                     PostStore, RateLimited, RetriesExhausted, ServerError, StoreLocked,
                                     UnsafePost, UnsupportedType, parse_posts, read_posts, scrape)
from chainer_dcgan.testing.safebooru_server import Fault, ServedPost, synthetic_posts
from conftest import REPO, make_served_posts, run_script


def client_for(server, **kwargs):
    kwargs.setdefault("delay", 0)
    kwargs.setdefault("backoff", 0.001)
    kwargs.setdefault("sleep", lambda s: None)  # record nothing, wait for nothing
    return safebooru.SafebooruClient(server.url, **kwargs)


def check_store(root, expected_ids=None):
    """Every line unique and matching a verified, decodable file; no stray or partial files."""
    records = read_posts(root)
    ids = [r["id"] for r in records]
    assert len(ids) == len(set(ids)), "duplicate posts.jsonl lines"
    files = set()
    for r in records:
        path = os.path.join(root, r["file"])
        with open(path, "rb") as f:
            data = f.read()
        assert hashlib.md5(data).hexdigest() == r["md5"]
        assert r["file"] == "images/{}/{}{}".format(r["md5"][:2], r["md5"], os.path.splitext(r["file"])[1])
        Image.open(io.BytesIO(data)).load()
        files.add(os.path.normpath(path))
    on_disk = {os.path.normpath(os.path.join(d, n)) for d, _, ns in os.walk(os.path.join(root, "images")) for n in ns}
    assert on_disk == files, "files without a line: {}".format(on_disk - files)
    assert os.listdir(os.path.join(root, safebooru.PARTIAL_DIR)) == []
    if expected_ids is not None:
        assert sorted(ids) == sorted(expected_ids)
    return records


def run_scrape(server, root, tags="1girl solo -comic", max_posts=100, client=None, **kwargs):
    client = client or client_for(server)
    with PostStore(root) as store:
        return scrape(client, store, tags, max_posts, **kwargs)


def expected(posts, tags=("1girl",), without=("comic",)):
    return [p.id for p in posts if all(t in p.tags for t in tags) and not any(t in p.tags for t in without)]


# --------------------------------------------------------------------------------------------
# Parsing


def test_parse_reference_xml_and_json(shared_data):
    api = os.path.join(shared_data, "safebooru_api")
    with open(os.path.join(api, "safebooru_posts_xml_example_RECONSTRUCTED.xml"), "rb") as f:
        xml_page = parse_posts(f.read())
    with open(os.path.join(api, "safebooru_posts_json_example.json"), "rb") as f:
        json_page = parse_posts(f.read())
    (x,), (j,) = xml_page.posts, json_page.posts
    assert (xml_page.count, xml_page.offset, json_page.count) == (1, 0, None)
    for post in (x, j):
        assert isinstance(post, Post)
        assert (post.id, post.md5, post.width, post.height) == (5979649, "fd12224ac5f69a151bf4589f80277e5f", 2048, 1402)
        assert post.image == "ac081fb888bf3ce0a0c387ce028ca731c7522e0f.jpg" and post.directory == "535"
        assert post.rating == "general" and "solo" in post.tags and "" not in post.tags
    with open(os.path.join(api, "rule34_gelbooru02_posts_xml_example.xml"), "rb") as f:
        (r,) = parse_posts(f.read()).posts
    assert (r.id, r.md5, r.directory, r.rating) == (5823623, "0966b7bb5f64f30010d14d5e98bb81e4", "5109", "sensitive")
    assert r.tags == ["belt", "heart", "jeans", "redhead", "shirt", "smile", "solo"]


def test_api_errors_raise_with_reason(shared_data):
    with open(os.path.join(shared_data, "safebooru_api", "error_responses.txt"), encoding="utf-8") as f:
        answers = re.findall(r"<response [^>]*/>", f.read())
    reasons = []
    for answer in answers:
        with pytest.raises(ApiError) as info:
            parse_posts('<?xml version="1.0" encoding="UTF-8"?>\n' + answer)
        reasons.append((info.value.reason, info.value.transient))
    assert reasons == [("Search error: API limited due to abuse.", False),
                       ("Search error: API disabled due to abuse.", False), ("search down", True)]
    assert parse_posts(b"").posts == [] and parse_posts("[]").posts == []
    for junk in ("<html>oops</html>", "{\"a\": 1}", "[{\"nope\": 1}]", "not xml"):
        with pytest.raises(safebooru.MalformedResponse):
            parse_posts(junk)


# --------------------------------------------------------------------------------------------
# Client


def test_get_posts_xml_and_json_agree(safebooru_site):
    posts = make_served_posts(12)
    server = safebooru_site(posts)
    client = client_for(server)
    xml_page = client.get_posts("1girl -comic", limit=4, pid=1)
    json_page = client.get_posts("1girl -comic", limit=4, pid=1, json=True)
    want = sorted(expected(posts), reverse=True)[4:8]
    assert [p.id for p in xml_page.posts] == [p.id for p in json_page.posts] == want
    assert (xml_page.count, xml_page.offset) == (len(expected(posts)), 4)
    assert [dataclass_dict(p) for p in xml_page.posts] == [dataclass_dict(p) for p in json_page.posts]
    agent = server.requests[-1].headers["User-Agent"]
    assert agent.startswith("chainer-dcgan/") and "python-requests" in agent
    with pytest.raises(ValueError):
        client.get_posts(limit=1001)


def dataclass_dict(post):
    return {k: v for k, v in vars(post).items() if k != "file_url"} | {"file_url": post.file_url.split("/")[-1]}


@pytest.mark.parametrize("as_json", [False, True])
def test_iter_posts_pages_by_id_not_deep_pid(safebooru_site, as_json):
    posts = make_served_posts(23, id_step=3)
    server = safebooru_site(posts, max_offset=8)  # a tiny deep-paging limit: pid paging would fail
    client = client_for(server)
    with pytest.raises(ApiError, match="API limited due to abuse"):
        client.get_posts("1girl", limit=5, pid=2)
    assert len(server.requests) == 1, "a lasting refusal must not be retried"
    ids = [p.id for p in client.iter_posts("1girl sort:id:asc", page_size=5, json=as_json)]
    assert ids == sorted((p.id for p in posts), reverse=True)
    listing = [r for r in server.requests[1:] if not r.is_image]
    assert all(r.query["pid"] == ["0"] for r in listing)
    assert "id:<" in listing[1].query["tags"][0]
    # A caller's id:<N is where paging starts.
    assert [p.id for p in client.iter_posts("1girl id:<10", page_size=2)] == [7, 4, 1]


def test_retries_honour_retry_after_and_back_off(safebooru_site):
    server = safebooru_site(make_served_posts(3), faults=[Fault("rate_limit", times=1, retry_after=7),
                                                          Fault("unavailable", times=3, skip=1)])
    waits = []
    client = client_for(server, backoff=0.5, retries=5, sleep=waits.append)
    assert len(client.get_posts("1girl").posts) == 3  # 429, then ok
    assert waits == [7.0]
    assert len(client.get_posts("1girl").posts) == 3  # 503 x3, then ok
    assert waits[1:] == [0.5, 1.0, 2.0]
    server.add_fault(Fault("unavailable", times=None))
    with pytest.raises(RetriesExhausted) as info:
        client_for(server, retries=2).get_posts("1girl")
    assert isinstance(info.value.last_error, ServerError) and info.value.attempts == 3
    assert "503" in str(info.value)
    server.clear_faults()
    server.add_fault(Fault("rate_limit", times=None, retry_after=1))
    with pytest.raises(RetriesExhausted) as info:
        client_for(server, retries=1).get_posts("1girl")
    assert isinstance(info.value.last_error, RateLimited) and info.value.last_error.retry_after == 1


def test_polite_delay_between_requests(safebooru_site):
    server = safebooru_site(make_served_posts(2))
    waits = []
    client = client_for(server, delay=5.0, sleep=waits.append)
    client.get_posts()
    assert waits == []
    client.get_posts()
    assert len(waits) == 1 and 4.5 < waits[0] <= 5.0


def test_missing_image_is_not_retried(safebooru_site, tmp_path):
    posts = make_served_posts(3)
    server = safebooru_site(posts)
    del server.by_path["/images/{}/{}".format(posts[1].directory, posts[1].image)]
    summary = run_scrape(server, str(tmp_path), tags="1girl")
    assert summary.stored == 2 and summary.rejected == {"HTTPStatusError": 1}
    assert sum(r.is_image for r in server.requests) == 3
    check_store(str(tmp_path), [posts[0].id, posts[2].id])


# --------------------------------------------------------------------------------------------
# Scraping under faults


FAULTS = {
    "rate_limit": [Fault("rate_limit", times=2, retry_after=3), Fault("rate_limit", target="image", times=2, skip=3)],
    "unavailable": [Fault("unavailable", target="api", times=2, skip=1), Fault("unavailable", target="image", times=3)],
    "reset": [Fault("reset", target="api", times=1, skip=1), Fault("reset", target="image", times=3, skip=2)],
    "truncate": [Fault("truncate", target="api", times=2), Fault("truncate", target="image", times=3, skip=4)],
    "bad_md5": [Fault("bad_md5", times=2, skip=1)],
    "api_error": [Fault("api_error", times=2, skip=1)],
    "empty_page": [Fault("empty_page", times=1, skip=1), Fault("empty_page", times=2, skip=3)],
}
FAULTS["all"] = [Fault(f.kind, f.target, f.times, f.skip, retry_after=f.retry_after)
                 for faults in FAULTS.values() for f in faults]


@pytest.mark.parametrize("as_json", [False, True], ids=["xml", "json"])
@pytest.mark.parametrize("kind", sorted(FAULTS))
def test_scrape_survives_fault(safebooru_site, tmp_path, kind, as_json):
    posts = make_served_posts(20)
    server = safebooru_site(posts, faults=[Fault(f.kind, f.target, f.times, f.skip, retry_after=f.retry_after)
                                           for f in FAULTS[kind]])
    # every fault at once makes long streaks of failures: allow more retries than one kind needs
    client = client_for(server, retries=20 if kind == "all" else 5)
    summary = run_scrape(server, str(tmp_path), page_size=4, json=as_json, client=client)
    assert all(f.hits == f.times for f in server.faults), [(f.kind, f.hits) for f in server.faults]
    assert summary.rejected == {} and summary.stored == len(expected(posts))
    check_store(str(tmp_path), expected(posts))


def test_lasting_bad_md5_rejects_that_post_only(safebooru_site, tmp_path):
    posts = make_served_posts(8)
    server = safebooru_site(posts, faults=[Fault("bad_md5", times=None, post_id=posts[6].id)])
    summary = run_scrape(server, str(tmp_path), tags="1girl", max_posts=6)
    assert summary.rejected == {"ChecksumMismatch": 1} and summary.stored == 6
    assert sum(r.path.endswith(posts[6].image) for r in server.requests) == 3  # 1 + 2 re-downloads
    check_store(str(tmp_path), [p.id for p in posts if p is not posts[6]][-6:])


def test_retries_exhausted_keeps_what_was_stored(safebooru_site, tmp_path):
    posts = make_served_posts(10)
    server = safebooru_site(posts, faults=[Fault("unavailable", target="image", times=None, skip=4)])
    with pytest.raises(RetriesExhausted):
        run_scrape(server, str(tmp_path), tags="1girl", client=client_for(server, retries=2))
    check_store(str(tmp_path), [p.id for p in posts][-4:])
    server.clear_faults()
    assert run_scrape(server, str(tmp_path), tags="1girl").stored == 6
    check_store(str(tmp_path), [p.id for p in posts])


# --------------------------------------------------------------------------------------------
# Store safety


def test_path_traversal_and_foreign_types_write_nothing(safebooru_site, tmp_path):
    good = make_served_posts(2)
    data = good[0].data
    bad = [ServedPost(id=10, tags=["1girl"], data=data, image="../../x.png"),
           ServedPost(id=11, tags=["1girl"], data=data, image="/tmp/abs.png"),
           ServedPost(id=12, tags=["1girl"], data=data, md5="../../../../etc/passwd"),
           ServedPost(id=13, tags=["1girl"], data=data, directory="../.."),
           ServedPost(id=14, tags=["1girl"], data=data, image="clip.webm"),
           ServedPost(id=15, tags=["1girl"], data=b"<?php echo 1; ?>", image="a" * 40 + ".php", width=9,
                      height=9),
           ServedPost(id=16, tags=["1girl"], data=b"MZ\x90\x00 not an image", image="b" * 40 + ".jpg",
                      width=10, height=10)]
    server = safebooru_site(good + bad)
    root = tmp_path / "out"
    before = sorted(str(p) for p in tmp_path.rglob("*"))
    summary = run_scrape(server, str(root), tags="1girl")
    assert summary.rejected == {"UnsafePost": 4, "UnsupportedType": 2, "NotAnImage": 1}
    check_store(str(root), [p.id for p in good])
    after = sorted(str(p) for p in tmp_path.rglob("*") if not str(p).startswith(str(root)))
    assert after == [p for p in before if not p.startswith(str(root))]
    assert not any(".." in r.path or r.path.endswith((".webm", ".php")) for r in server.requests if r.is_image)


def test_size_and_pixel_caps(safebooru_site, tmp_path):
    posts = make_served_posts(3, size=(64, 64))
    server = safebooru_site(posts)
    listed = client_for(server).get_posts("1girl").posts
    with PostStore(str(tmp_path / "a")) as store:
        with pytest.raises(FileTooLarge, match="cap"):
            store.add(listed[0], client_for(server, max_file_bytes=100))
        with pytest.raises(FileTooLarge):
            store.add(listed[1], client_for(server, max_pixels=64 * 63))
        assert len(store) == 0
    check_store(str(tmp_path / "a"), [])


def test_rejections_are_named(tmp_path):
    post = Post(id=1, md5="0" * 32, image="x.png", directory="1", width=1, height=1, rating="general", tags=[])
    for change, error in [({"md5": "zz"}, UnsafePost), ({"image": "a/b.png"}, UnsafePost),
                          ({"image": ".."}, UnsafePost), ({"image": "x.mp4"}, UnsupportedType)]:
        with pytest.raises(error):
            safebooru.check_post(Post(**{**vars(post), **change}))
    path = tmp_path / "x.bin"
    path.write_bytes(b"GIF89a broken")
    with pytest.raises(NotAnImage):
        safebooru.verify_image(str(path))
    Image.new("RGB", (4, 4)).save(str(path), "BMP")
    with pytest.raises(UnsupportedType):
        safebooru.verify_image(str(path))
    assert issubclass(ChecksumMismatch, safebooru.PostRejected) and issubclass(RateLimited, HTTPStatusError)


# --------------------------------------------------------------------------------------------
# Resuming


def test_rerun_fetches_only_what_is_missing(safebooru_site, tmp_path):
    posts = make_served_posts(16)
    posts.append(ServedPost(id=100, tags=["1girl", "solo"], data=posts[0].data))  # a repost: same MD5
    server = safebooru_site(posts)
    root = str(tmp_path)
    first = run_scrape(server, root, tags="1girl", max_posts=6)
    assert (first.stored, first.already) == (6, 0)
    downloads = sum(r.is_image for r in server.requests)
    second = run_scrape(server, root, tags="1girl", max_posts=100)
    assert (second.stored, second.already) == (10, 7)  # 6 stored + post 1, an older copy of 100
    assert sum(r.is_image for r in server.requests) - downloads == 10
    check_store(root, [p.id for p in posts[1:]])
    third = run_scrape(server, root, tags="1girl", max_posts=100)
    assert (third.stored, third.already) == (0, 17)


def test_file_in_place_without_line_is_adopted(safebooru_site, tmp_path):
    posts = make_served_posts(3)
    server = safebooru_site(posts)
    root = str(tmp_path)
    run_scrape(server, root, tags="1girl")
    lines = open(os.path.join(root, "posts.jsonl"), encoding="utf-8").read().splitlines(True)
    # a kill between the rename and the append, and one halfway through writing a line
    with open(os.path.join(root, "posts.jsonl"), "w", encoding="utf-8") as f:
        f.write(lines[0] + lines[1][:10])
    with open(os.path.join(root, safebooru.PARTIAL_DIR, "left.part"), "wb") as f:
        f.write(b"half")
    images_before = sum(r.is_image for r in server.requests)
    summary = run_scrape(server, root, tags="1girl")
    assert (summary.stored, summary.already) == (2, 1)
    assert sum(r.is_image for r in server.requests) == images_before
    check_store(root, [p.id for p in posts])


def test_one_writer_per_folder(tmp_path):
    with PostStore(str(tmp_path)):
        with pytest.raises(StoreLocked):
            PostStore(str(tmp_path))
    PostStore(str(tmp_path)).close()


def test_scrape_keeps_tags_of_synthetic_scenes(safebooru_site, tmp_path):
    posts = synthetic_posts(8, seed=1)
    server = safebooru_site(posts, faults=[Fault("reset", target="image", times=2)])
    run_scrape(server, str(tmp_path), tags="1girl solo", json=True)
    records = check_store(str(tmp_path), [p.id for p in posts if "solo" in p.tags])
    by_id = {p.id: p for p in posts}
    for r in records:
        post = by_id[r["id"]]
        assert (r["tags"], r["source"], r["width"], r["height"]) == (post.tags, post.source, 320, 240)


def test_filters(safebooru_site, tmp_path):
    posts = make_served_posts(6) + make_served_posts(2, start_id=50, size=(20, 300))
    server = safebooru_site(posts)
    summary = run_scrape(server, str(tmp_path), tags="1girl", min_size=40, ratings=["g"])
    assert summary.filtered == 5 and summary.stored == 3
    assert {r["rating"] for r in check_store(str(tmp_path))} == {"general"}


# --------------------------------------------------------------------------------------------
# Command line


def test_cli_scrape_fail_then_resume(safebooru_site, tmp_path):
    posts = make_served_posts(12)
    server = safebooru_site(posts, faults=[Fault("unavailable", target="image", times=None, skip=5)])
    args = ["--base-url", server.url, "--delay", "0", "--tags", "1girl solo -comic", "--out", tmp_path,
            "--max-posts", 8, "--retries", 1, "--backoff", 0.01, "--no-progress"]
    proc = run_script("tools/scrape_safebooru.py", *args, timeout=120, check=False)
    assert proc.returncode == 1
    assert "giving up after 2 attempts" in proc.stderr and "rerun the same command" in proc.stderr
    assert len(check_store(str(tmp_path))) == 5
    server.clear_faults()
    proc = run_script("tools/scrape_safebooru.py", *args, "--json", timeout=120)
    assert "stored 3 new, 5 already there" in proc.stdout
    check_store(str(tmp_path), sorted(expected(posts))[-8:])
    assert "--max-posts" in run_script("tools/scrape_safebooru.py", "--help").stdout


def test_kill_9_then_rerun_completes_exactly(safebooru_site, tmp_path):
    posts = make_served_posts(12, size=(320, 320), formats=("PNG",))
    # ~300 KB PNGs at 64 KiB per 0.05 s: each download takes a while, so kills land mid-body too.
    server = safebooru_site(posts, chunk_delay=0.05)
    cmd = [sys.executable, os.path.join(REPO, "tools", "scrape_safebooru.py"), "--base-url", server.url,
           "--delay", "0", "--tags", "1girl", "--out", str(tmp_path), "--max-posts", "100", "--no-progress"]
    lines = os.path.join(str(tmp_path), "posts.jsonl")
    partial = os.path.join(str(tmp_path), safebooru.PARTIAL_DIR)

    def mid_body():
        names = os.listdir(partial) if os.path.isdir(partial) else []
        sizes = []
        for name in names:
            with contextlib.suppress(OSError):
                sizes.append(os.path.getsize(os.path.join(partial, name)))
        # at most two of ~five chunks in: a 0.05 s pause or more before it could complete
        return any(0 < size <= 2 << 16 for size in sizes)

    for kill_after in (2, 5):
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        deadline = time.monotonic() + 60
        try:
            while time.monotonic() < deadline and proc.poll() is None:
                if (os.path.exists(lines) and open(lines, "rb").read().count(b"\n") >= kill_after
                        and mid_body()):
                    break
                time.sleep(0.005)
            assert proc.poll() is None, "the scraper finished before it could be killed"
            os.kill(proc.pid, signal.SIGKILL)
        finally:
            proc.kill()
            proc.wait(timeout=10)
        assert os.listdir(partial), "killed mid-download: its temporary file is left, out of place"
        records = read_posts(str(tmp_path))
        assert len(records) == len({r["id"] for r in records}) >= kill_after
        for r in records:  # whatever is in place is whole
            with open(os.path.join(str(tmp_path), r["file"]), "rb") as f:
                assert hashlib.md5(f.read()).hexdigest() == r["md5"]
        for d, _, names in os.walk(os.path.join(str(tmp_path), "images")):
            assert not [n for n in names if not re.match(r"^[0-9a-f]{32}\.(png|jpg)$", n)]
    server.chunk_delay = 0
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    check_store(str(tmp_path), [p.id for p in posts])


def test_tag_list_through_the_client_and_the_cli(shared_data, safebooru_site):
    posts = [ServedPost(id=i, tags=tags.split(), data=b"x", width=1, height=1, image="x.png")
             for i, tags in [(1, "blue_hair solo"), (2, "blue_hair long_hair"), (3, "猫耳 blue_hair"),
                             (4, "long_hair solo 猫耳"), (5, "silver_hair")]]
    server = safebooru_site(posts)
    with safebooru.SafebooruClient(server.url, delay=0) as client:
        tags = client.get_tags(name_pattern="*_hair")
        assert [(t.name, t.count, t.type) for t in tags] == [("blue_hair", 3, 0), ("long_hair", 2, 0),
                                                             ("silver_hair", 1, 0)]
        assert [t.name for t in client.get_tags(names=["猫耳", "solo"])] == ["solo", "猫耳"]
        assert len(client.get_tags(limit=2)) == 2
        with pytest.raises(ValueError):
            client.get_tags(limit=0)
    with open(os.path.join(shared_data, "safebooru_api", "tags_xml_example.xml"), "rb") as f:
        ref = safebooru.parse_tags(f.read())
    assert (ref[1].name, ref[1].count, ref[1].type, ref[1].id, ref[1].ambiguous) == ("angel_beats!", 335, 3, 26272,
                                                                                    False)
    with pytest.raises(ApiError):
        safebooru.parse_tags(b'<response success="false" reason="search down"/>')
    proc = run_script("tools/scrape_safebooru.py", "--base-url", server.url, "--delay", 0, "--list-tags", "%耳",
                      env={"LC_ALL": "C"})
    assert proc.stdout.splitlines() == ["        2 猫耳"]
    proc = run_script("tools/scrape_safebooru.py", "--base-url", server.url, "--delay", 0, "--list-tags", "*hair*",
                      "--tag-limit", 2)
    assert [line.split() for line in proc.stdout.splitlines()] == [["3", "blue_hair"], ["2", "long_hair"]]
    proc = run_script("tools/scrape_safebooru.py", "--base-url", server.url, "--list-tags", "x", "--tag-limit", 0,
                      check=False)
    assert proc.returncode == 2 and "--tag-limit" in proc.stderr
    proc = run_script("tools/scrape_safebooru.py", "--base-url", server.url, check=False)
    assert proc.returncode == 2 and "--out and --max-posts are required" in proc.stderr
