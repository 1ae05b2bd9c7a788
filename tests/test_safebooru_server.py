"""The local safebooru: the API's shapes, search, paging, images and injected faults, over raw HTTP."""
import hashlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
import requests

from chainer_dcgan.safebooru_server import (DEEP_PAGING_REASON, FakeSafebooru, Fault, ServedPost, posts_from_folder,
                                            search, synthetic_posts)
from conftest import REPO, make_served_posts


def listing(server, **params):
    params = {"page": "dapi", "s": "post", "q": "index", **params}
    return requests.get(server.url + "/index.php", params=params, timeout=10)


def xml_posts(response):
    root = ElementTree.fromstring(response.content)
    assert root.tag == "posts", response.text[:200]
    return root, [dict(p.attrib) for p in root]


def test_xml_and_json_shapes(safebooru_site):
    posts = make_served_posts(3)
    server = safebooru_site(posts)
    root, xml = xml_posts(listing(server, limit=2))
    assert (root.get("count"), root.get("offset")) == ("3", "0")
    assert [p["id"] for p in xml] == ["3", "2"]
    first = xml[0]
    assert all(isinstance(v, str) for v in first.values())
    assert first["tags"] == " 1girl solo " and first["md5"] == hashlib.md5(posts[2].data).hexdigest()
    assert first["file_url"] == "{}/images/{}/{}".format(server.url, posts[2].directory, posts[2].image)
    response = listing(server, limit=2, json=1)
    assert response.headers["Content-Type"] == "application/json"
    data = response.json()
    assert isinstance(data, list) and [p["id"] for p in data] == [3, 2]
    assert data[0]["hash"] == first["md5"] and data[0]["tags"] == "1girl solo"
    assert isinstance(data[0]["width"], int) and isinstance(data[0]["directory"], int)
    assert posts[0].image == hashlib.sha1(posts[0].data).hexdigest() + ".jpg"  # named as the site names files


def test_search_tags_and_meta_tags():
    posts = [ServedPost(id=i, tags=tags, data=b"x", width=1, height=1, image="x.png", rating=rating)
             for i, tags, rating in [(1, ["a", "b"], "general"), (2, ["a"], "sensitive"), (3, ["b", "c"], "general"),
                                     (4, ["a", "c"], "questionable"), (5, ["a", "b", "c"], "general")]]

    def ids(query):
        return [p.id for p in search(posts, query)]

    assert ids("") == [5, 4, 3, 2, 1]
    assert ids("a b") == [5, 1]
    assert ids("a -c") == [2, 1]
    assert ids("a id:<5") == [4, 2, 1] and ids("id:>3") == [5, 4] and ids("id:3") == [3]
    assert ids("id:<=2 sort:id:asc") == [1, 2] and ids("id:>=4 -id:5") == [4]
    assert ids("rating:general") == [5, 3, 1] and ids("rating:s") == [2] and ids("-rating:general a") == [4, 2]
    assert ids("nosuchtag") == [] and ids("id:<x") == []


def test_limit_cap_pid_paging_and_deep_paging(safebooru_site):
    data = make_served_posts(1)[0].data
    posts = [ServedPost(id=i, tags=["t"], data=data, width=48, height=64, image="{:040x}.jpg".format(i))
             for i in range(1, 1101)]
    server = safebooru_site(posts, max_offset=2000)
    root, page = xml_posts(listing(server, limit=5000))
    assert len(page) == 1000 and root.get("count") == "1100"
    root, page = xml_posts(listing(server, limit=1000, pid=1))
    assert len(page) == 100 and root.get("offset") == "1000" and page[-1]["id"] == "1"
    root, page = xml_posts(listing(server, limit=100, pid=20))
    assert page == [] and root.get("count") == "1100"
    for params in ({"limit": 100, "pid": 21}, {"limit": 1000, "pid": 3, "json": 1}):
        response = listing(server, **params)
        assert response.status_code == 200
        assert ElementTree.fromstring(response.content).attrib == {"success": "false", "reason": DEEP_PAGING_REASON}
    assert [p["id"] for p in listing(server, limit=3, tags="id:<500", json=1).json()] == [499, 498, 497]


def test_images_are_served_and_nothing_else(safebooru_site):
    posts = make_served_posts(2)
    server = safebooru_site(posts)
    for post in posts:
        response = requests.get("{}/images/{}/{}".format(server.url, post.directory, post.image), timeout=10)
        assert response.content == post.data
        assert response.headers["Content-Type"] == ("image/png" if post.image.endswith(".png") else "image/jpeg")
    for path in ("/images/0/nothing.png", "/images/../conftest.py", "/etc/passwd", "/images/0/%2e%2e/x"):
        assert requests.get(server.url + path, timeout=10).status_code == 404


def test_faults_over_raw_http(safebooru_site):
    posts = make_served_posts(2, size=(200, 200))
    server = safebooru_site(posts)
    image_url = server.url + "/images/{}/{}".format(posts[1].directory, posts[1].image)

    server.add_fault(Fault("rate_limit", retry_after=9))
    response = listing(server)
    assert response.status_code == 429 and response.headers["Retry-After"] == "9"
    assert listing(server).status_code == 200  # times=1
    server.add_fault(Fault("unavailable", target="image", skip=1))
    assert requests.get(image_url, timeout=10).status_code == 200
    assert requests.get(image_url, timeout=10).status_code == 503
    server.add_fault("api_error:reason=search down")
    response = listing(server, json=1)
    assert response.status_code == 200 and 'reason="search down"' in response.text
    server.add_fault(Fault("empty_page"))
    assert listing(server, json=1).json() == []
    server.add_fault(Fault("bad_md5"))
    corrupted = requests.get(image_url, timeout=10).content
    assert len(corrupted) == len(posts[1].data) and corrupted != posts[1].data
    for kind in ("reset", "truncate"):
        server.add_fault(Fault(kind, target="image"))
        with pytest.raises((requests.exceptions.ChunkedEncodingError, requests.ConnectionError)):
            requests.get(image_url, timeout=10)
    assert requests.get(image_url, timeout=10).content == posts[1].data  # every fault used up
    assert [f.hits for f in server.faults] == [1] * 7


def test_fault_options():
    fault = Fault.parse("rate_limit:times=all,retry_after=2,skip=3,target=image")
    assert (fault.kind, fault.times, fault.retry_after, fault.skip, fault.target) == ("rate_limit", None, 2, 3, "image")
    assert Fault("bad_md5").target == "image" and Fault("empty_page").target == "api" and Fault("reset").target == "any"
    for bad in ("nope", "reset:times", "reset:color=red", "reset:target=disk"):
        with pytest.raises(ValueError):
            Fault.parse(bad)


def test_posts_from_folders(shared_data, tmp_path):
    samples = posts_from_folder(os.path.join(shared_data, "anime_samples"))
    assert [p.id for p in samples] == list(range(1, 9))
    assert samples[1].tags == ["renpy", "eileen", "happy"] and (samples[1].width, samples[1].height) == (320, 720)
    # a scrape's posts.jsonl gives ids and tags
    (tmp_path / "images").mkdir()
    (tmp_path / "images" / "a.png").write_bytes(make_served_posts(2)[1].data)
    (tmp_path / "posts.jsonl").write_text(json.dumps({"id": 77, "file": "images/a.png", "tags": ["x"],
                                                      "rating": "general"}) + "\n")
    (post,) = posts_from_folder(str(tmp_path))
    assert (post.id, post.tags, post.width) == (77, ["x"], 64)
    (tmp_path / "posts.jsonl").write_text(json.dumps({"id": 1, "file": "../a.png", "tags": []}) + "\n")
    with pytest.raises(ValueError, match="outside"):
        posts_from_folder(str(tmp_path))
    (tmp_path / "empty").mkdir()
    with pytest.raises(ValueError, match="no images"):
        posts_from_folder(str(tmp_path / "empty"))


def test_synthetic_scenes():
    posts = synthetic_posts(6, seed=3)
    again = synthetic_posts(6, seed=3)
    assert [p.data for p in posts] == [p.data for p in again] and [p.id for p in posts] == list(range(1, 7))
    from chainer_dcgan.datasets.synthetic import TAGS
    for post in posts:
        assert (post.width, post.height) == (320, 240) and post.image.endswith(".jpg") and 1 <= len(post.boxes) <= 3
        assert ("solo" in post.tags) == (len(post.boxes) == 1) and ("multiple_girls" in post.tags) != ("solo" in post.tags)
        assert set(post.tags) - {"1girl", "solo", "multiple_girls"} <= set(TAGS)
        assert all(0 <= x and x + w <= 320 and 0 <= y and y + h <= 240 for x, y, w, h in post.boxes)
    with pytest.raises(ValueError):
        synthetic_posts(1, scene_size=(100, 100))


def test_cli_serves_a_folder(shared_data):
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "fake_safebooru.py"), "--folder",
                             os.path.join(shared_data, "anime_samples"), "--fault", "unavailable:times=1"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving 8 posts at http://127.0.0.1:"), line + proc.stderr.read()
        server = type("S", (), {"url": line.split()[-1]})
        assert listing(server).status_code == 503
        _, page = xml_posts(listing(server, tags="renpy -eileen"))
        assert len(page) == 5  # the six renpy_* files but eileen
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def test_server_stops_cleanly():
    server = FakeSafebooru(make_served_posts(1)).start()
    url = server.url
    server.stop()
    with pytest.raises(requests.ConnectionError):
        requests.get(url + "/index.php", timeout=2)
    FakeSafebooru(make_served_posts(1)).stop()  # never started: returns at once
