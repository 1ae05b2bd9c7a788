"""A hostile or broken safebooru, and hostile records on disk: wrong types (issue 27, family 5) and
limits on what a server may send (family 4). Real servers on 127.0.0.1."""
import json
import os
import time

import pytest

from chainer_dcgan.collection.safebooru import MalformedResponse, PostStore, SafebooruError, parse_posts

MD5 = "0123456789abcdef0123456789abcdef"
POST = {"id": 7, "hash": MD5, "image": "a.png", "directory": "1", "width": 10, "height": 10,
        "rating": "general", "tags": "1girl solo"}


def _drip(handler, length=None):
    """An answer that sends one byte every 0.5 s (with a Content-Length of ``length`` when given)."""
    handler.send_response(200)
    if length is not None:
        handler.send_header("Content-Length", str(length))
    handler.end_headers()
    for _ in range(1000):
        handler.wfile.write(b" ")
        handler.wfile.flush()
        time.sleep(0.5)


@pytest.mark.parametrize("change, named", [
    ({"id": "abc"}, "id must be an integer >= 1, got 'abc'"),
    ({"id": [7]}, "id must be an integer >= 1, got [7]"),
    ({"id": 1e999}, "id must be an integer >= 1, got inf"),
    ({"id": True}, "id must be an integer >= 1, got True"),
    ({"id": 0}, "id must be an integer >= 1, got 0"),
    ({"tags": ["1girl"]}, "field 'tags' must be a string"),
    ({"image": {"a": 1}}, "field 'image' must be a string"),
    ({"file_url": 5}, "field 'file_url' must be a string"),
])
def test_json_posts_of_the_wrong_type_are_malformed(change, named):
    body = json.dumps([dict(POST, **change)]).replace("Infinity", "1e999")
    with pytest.raises(MalformedResponse, match="JSON post: " + named.replace("[", r"\[").replace("]", r"\]")):
        parse_posts(body)


def test_ordinary_json_posts_still_parse():
    (post,) = parse_posts(json.dumps([dict(POST, id="7", width=1e999, score="x")])).posts
    assert post.id == 7 and post.width == 0 and post.score is None and post.tags == ["1girl", "solo"]
    with pytest.raises(MalformedResponse, match="JSON post without an id: 'a'"):
        parse_posts('["a"]')


@pytest.mark.parametrize("xml_id", ["abc", "1e999", "-3", ""])
def test_xml_posts_without_a_plain_id_are_malformed(xml_id):
    with pytest.raises(MalformedResponse, match="numeric id"):
        parse_posts('<posts count="1" offset="0"><post id="{}" md5="{}"/></posts>'.format(xml_id, MD5))


@pytest.mark.parametrize("record, named", [
    ({"id": 1e999, "md5": MD5}, "'id' must be an integer >= 1, got inf"),
    ({"id": "abc", "md5": MD5}, "'id' must be an integer >= 1, got 'abc'"),
    ({"id": 3, "md5": 5}, "'md5' must be a string, got 5"),
    ([1, 2], "the line must be an object"),
    ({"md5": MD5}, "no 'id'"),
])
def test_store_names_a_wrong_typed_line(tmp_path, record, named):
    line = json.dumps(record).replace("Infinity", "1e999")
    (tmp_path / "posts.jsonl").write_text(json.dumps({"id": 1, "md5": MD5}) + "\n" + line + "\n")
    with pytest.raises(SafebooruError, match=r"posts.jsonl:2: not a post record \(" + named.replace("[", r"\[")):
        PostStore(tmp_path)


# -- family 4: what a server may make the client do -----------------------------------------------

def _client(server, **kwargs):
    from chainer_dcgan.collection.safebooru import SafebooruClient

    kwargs.setdefault("retries", 0)
    return SafebooruClient(server.url, delay=0, backoff=0, **kwargs)


def _answer(body, status=200, headers=()):
    def answer(handler):
        handler.send_response(status)
        for key, value in headers:
            handler.send_header(key, value)
        if not any(k.lower() == "content-length" for k, _ in headers):
            handler.send_header("Content-Length", str(len(body)))
        handler.end_headers()
        handler.wfile.write(body)
    return answer


def _xml_post(post_id, file_url, tags="1girl"):
    return ('<post id="{}" md5="{}" file_url="{}" width="100" height="100" rating="g" tags="{}"/>'
            .format(post_id, MD5, file_url, tags))


def test_an_endless_listing_stops_at_the_cap(http_server):
    from chainer_dcgan.collection.safebooru import ResponseTooLarge

    def endless(handler):
        handler.send_response(200)
        handler.end_headers()  # no Content-Length: the body ends when the connection does, i.e. never
        handler.wfile.write(b'<posts count="1" offset="0">')
        while True:
            handler.wfile.write(b"<post/>" * 10000)

    server = http_server(endless)
    with _client(server, max_listing_bytes=1 << 20) as client:
        with pytest.raises(ResponseTooLarge, match=r"more than 1048576 bytes"):
            client.get_posts("1girl")


def test_a_declared_oversized_listing_is_refused_before_its_body(http_server):
    from chainer_dcgan.collection.safebooru import ResponseTooLarge

    server = http_server(_answer(b"x" * 5000))
    with _client(server, max_listing_bytes=1000) as client:
        with pytest.raises(ResponseTooLarge, match="5000 bytes over the cap of 1000"):
            client.get_posts()


def test_a_gzip_bomb_stops_at_the_cap_in_bounded_memory(http_server):
    import gzip
    import resource

    from chainer_dcgan.collection.safebooru import ResponseTooLarge

    bomb = gzip.compress(b"[" + b" " * (1 << 30), compresslevel=9)  # 1 GiB of JSON whitespace in ~1 MB
    assert len(bomb) < 2 << 20
    server = http_server(_answer(bomb, headers=[("Content-Encoding", "gzip"), ("Content-Length", str(len(bomb)))]))
    before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    with _client(server, max_listing_bytes=8 << 20) as client:
        with pytest.raises(ResponseTooLarge, match=r"more than 8388608 bytes decompressed from \d+"):
            client.get_posts()
    grown_kib = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - before
    assert grown_kib < 200 * 1024, grown_kib


def test_an_ordinary_gzip_listing_still_reads(http_server):
    import gzip

    body = gzip.compress(('<posts count="1" offset="0">' + _xml_post(3, "/images/1/a.png") + "</posts>").encode())
    server = http_server(_answer(body, headers=[("Content-Encoding", "gzip")]))
    with _client(server) as client:
        (post,) = client.get_posts().posts
    assert post.id == 3 and post.tags == ["1girl"]


def test_a_dripping_server_ends_within_the_deadline(http_server):

    from chainer_dcgan.collection.safebooru import DeadlineExceeded, RetriesExhausted

    server = http_server(lambda handler: _drip(handler, length=100000))
    start = time.monotonic()
    with _client(server, timeout=1.5) as client:  # each byte comes well within the socket timeout
        with pytest.raises(RetriesExhausted, match="took longer than 3 s") as e:
            client.get_posts()
    assert isinstance(e.value.last_error, DeadlineExceeded)
    assert time.monotonic() - start < 5


def test_a_dripping_server_through_the_command_line(http_server, tmp_path):
    """tools/scrape_safebooru.py --timeout 1 against a drip: one error line, well before a minute."""
    import subprocess
    import sys

    from conftest import REPO

    server = http_server(_drip)
    start = time.monotonic()
    proc = subprocess.run([sys.executable, REPO + "/tools/scrape_safebooru.py", "--base-url", server.url, "--out",
                           str(tmp_path / "s"), "--max-posts", "1", "--timeout", "1", "--retries", "1",
                           "--delay", "0", "--no-progress"],
                          capture_output=True, text=True, timeout=120, env=dict(os.environ, PYTHONPATH=REPO))
    took = time.monotonic() - start
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode != 0 and "Traceback" not in proc.stderr, proc.stderr
    assert lines[-1].startswith("error: ") and "took longer than 2 s" in lines[-1], lines[-3:]
    assert took < 30, took


@pytest.mark.parametrize("entity", [
    '<!DOCTYPE posts [<!ENTITY x "injected_tag">]>',
    '<!DOCTYPE posts [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]>',
    '<!DOCTYPE posts SYSTEM "file:///etc/passwd">',
], ids=["internal", "laughs", "external"])
def test_xml_with_a_dtd_is_refused(http_server, entity):
    body = '<?xml version="1.0"?>{}<posts count="1" offset="0">{}</posts>'.format(
        entity, _xml_post(3, "/images/1/a.png", tags="&x;" if "x " in entity else "1girl"))
    with pytest.raises(MalformedResponse, match=r"declares a DTD"):
        parse_posts(body)
    from chainer_dcgan.collection.safebooru import parse_tags
    with pytest.raises(MalformedResponse, match=r"tag list declares a DTD"):
        parse_tags('<?xml version="1.0"?>{}<tags type="array"><tag id="1" name="x"/></tags>'.format(entity))


def _image_posts_answer(file_url):
    body = '<posts count="1" offset="0">{}</posts>'.format(_xml_post(3, file_url)).encode()
    return _answer(body)


def test_only_the_configured_host_is_fetched(http_server, tmp_path):
    """A listing whose file_url names another local port, a listing that redirects there, an image that
    redirects there: the other server is never asked; the post is rejected, the listing refused."""
    from chainer_dcgan.collection.safebooru import ForeignHost, ForeignImageHost, PostStore, scrape

    other = http_server(_answer(b"\x89PNG stolen"))
    site = http_server(_image_posts_answer(other.url + "/images/1/a.png"))
    with _client(site) as client, PostStore(tmp_path / "s") as store:
        (post,) = client.get_posts().posts
        with pytest.raises(ForeignImageHost, match="is not on " + site.url):
            client.download(post, str(tmp_path / "x"))
        summary = scrape(client, store, "", max_posts=1)
    assert summary.rejected == {"ForeignImageHost": 1} and summary.stored == 0

    redirecting = http_server(_answer(b"", status=302, headers=[("Location", other.url + "/index.php?x=1")]))
    with _client(redirecting) as client:
        with pytest.raises(ForeignHost, match="is not on"):
            client.get_posts()

    def listing_then_redirect(handler):
        if handler.path.startswith("/index.php"):
            _image_posts_answer("/images/1/a.png")(handler)
        else:
            _answer(b"", status=301, headers=[("Location", other.url + "/images/1/a.png")])(handler)

    site2 = http_server(listing_then_redirect)
    with _client(site2) as client:
        (post,) = client.get_posts().posts
        with pytest.raises(ForeignImageHost):
            client.download(post, str(tmp_path / "y"))
    assert other.paths == [], other.paths  # asked not once


def test_redirects_within_the_site_are_followed_and_bounded(http_server):
    from chainer_dcgan.collection.safebooru import ForeignHost

    def answer(handler):
        if handler.path.startswith("/old"):
            _answer(b"", status=301, headers=[("Location", "/index.php?page=dapi")])(handler)
        elif handler.path.startswith("/loop"):
            _answer(b"", status=302, headers=[("Location", "/loop")])(handler)
        else:
            _answer(('<posts count="1" offset="0">' + _xml_post(4, "/images/1/a.png") + "</posts>").encode())(handler)

    server = http_server(answer)
    from chainer_dcgan.collection.safebooru import SafebooruClient
    with SafebooruClient(server.url + "/old", delay=0, retries=0) as client:
        assert [p.id for p in client.get_posts().posts] == [4]
    with SafebooruClient(server.url + "/loop", delay=0, retries=0) as client:
        with pytest.raises(ForeignHost, match="more than 5 redirects"):
            client.get_posts()


def test_an_image_over_the_cap_without_a_length_is_cut_off(http_server, tmp_path):
    from chainer_dcgan.collection.safebooru import FileTooLarge

    def answer(handler):
        if handler.path.startswith("/index.php"):
            _image_posts_answer("/images/1/a.png")(handler)
        else:
            handler.send_response(200)
            handler.end_headers()
            while True:
                handler.wfile.write(b"\0" * 65536)

    server = http_server(answer)
    with _client(server, max_file_bytes=1 << 20) as client:
        (post,) = client.get_posts().posts
        with pytest.raises(FileTooLarge, match="over the cap of 1048576"):
            client.download(post, str(tmp_path / "x"))
