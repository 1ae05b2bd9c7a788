"""The local safebooru: the API's shapes, search, paging, images and injected faults, over raw HTTP."""
import hashlib
import json
import os
import subprocess
import sys
import xml.etree.ElementTree as ElementTree

import pytest
import requests

from chainer_dcgan.testing.safebooru_server import (DEEP_PAGING_REASON, FakeSafebooru, Fault, ServedPost, posts_from_folder,
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


# -- fidelity to ../shared/data/safebooru_api/ ---------------------------------------------------


def reference_post():
    """Post 5979649 of the reference examples: 2048x1402, in directory 535."""
    import io

    from PIL import Image
    buf = io.BytesIO()
    Image.new("RGB", (2048, 1402), (40, 90, 160)).save(buf, "JPEG")
    return ServedPost(id=5979649, tags=["1boy", "blue_hair", "solo"], data=buf.getvalue(), directory="535",
                      image="ac081fb888bf3ce0a0c387ce028ca731c7522e0f.jpg", change=1754388019, created=1754388019,
                      source="https://twitter.com/ruko220/status/1694335247796830682")


def read_api_example(shared_data, name):
    with open(os.path.join(shared_data, "safebooru_api", name), "rb") as f:
        return f.read()


def test_xml_post_as_the_reference(shared_data, safebooru_site):
    server = safebooru_site([reference_post()])
    response = listing(server)
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    assert response.content.startswith(b'<?xml version="1.0" encoding="UTF-8"?>\n<posts count="1" offset="0">')
    (ours,) = xml_posts(response)[1]
    (ref,) = [dict(p.attrib) for p in ElementTree.fromstring(
        read_api_example(shared_data, "safebooru_posts_xml_example_RECONSTRUCTED.xml"))]
    assert list(ours) == list(ref)  # the same attributes in the same order
    same = ("height", "width", "sample_width", "sample_height", "preview_width", "preview_height", "rating", "change",
            "id", "parent_id", "has_children", "status", "source", "has_notes", "score", "created_at")
    assert {k: ours[k] for k in same} == {k: ref[k] for k in same}
    for key in ("file_url", "sample_url", "preview_url"):  # the same layout under the server's root
        assert ours[key] == server.url + ref[key][len("https://safebooru.org"):]
    rule34 = ElementTree.fromstring(read_api_example(shared_data, "rule34_gelbooru02_posts_xml_example.xml"))[0]
    assert set(rule34.attrib) == set(ours)


def test_json_post_as_the_reference(shared_data, safebooru_site):
    server = safebooru_site([reference_post()])
    (ours,) = listing(server, json=1).json()
    (ref,) = json.loads(read_api_example(shared_data, "safebooru_posts_json_example.json"))
    assert list(ours) == list(ref)
    assert {k: type(v) for k, v in ours.items()} == {k: type(v) for k, v in ref.items()}
    differ = {"tags", "hash", "preview_url", "sample_url", "file_url"}
    assert {k: v for k, v in ours.items() if k not in differ} == {k: v for k, v in ref.items() if k not in differ}
    assert ours["sample_url"] == server.url + "/samples/535/sample_ac081fb888bf3ce0a0c387ce028ca731c7522e0f.jpg"


def test_previews_and_samples_are_served(safebooru_site):
    import io

    from PIL import Image
    small = make_served_posts(1, size=(120, 100))[0]  # 100x120: no sample
    server = safebooru_site([reference_post(), small])
    for post in listing(server, json=1).json():
        for key, size in (("preview_url", "preview"), ("sample_url", "sample")):
            response = requests.get(post[key], timeout=10)
            assert response.status_code == 200, post[key]
            with Image.open(io.BytesIO(response.content)) as img:
                assert img.size == (post[size + "_width"], post[size + "_height"]) if size == "sample" else \
                    max(img.size) <= 150
    (big, little) = listing(server, json=1).json()
    assert (big["sample"], little["sample"]) == (True, False) and little["sample_url"] == little["file_url"]
    assert (little["sample_width"], little["sample_height"]) == (100, 120)
    _, xml = xml_posts(listing(server, id=small.id))
    assert (xml[0]["preview_width"], xml[0]["preview_height"]) == ("100", "120")  # never upscaled


def test_created_at_format():
    from chainer_dcgan.testing.safebooru_server import created_at
    # the rule34 example's date, 02:02:02 UTC, shown at +0100
    assert created_at(1647568922, utc_offset_minutes=60) == "Fri Mar 18 03:02:02 +0100 2022"
    assert created_at(1754388019) == "Tue Aug 05 10:00:19 +0000 2025"
    assert created_at(0, utc_offset_minutes=-330) == "Wed Dec 31 18:30:00 -0530 1969"


def test_deep_paging_answer_is_the_reference(shared_data, safebooru_site):
    text = read_api_example(shared_data, "error_responses.txt").decode("utf-8")
    reference = text[text.index("<?xml"):text.index("<!-- 2.")].strip().encode("utf-8")
    server = safebooru_site(make_served_posts(3), max_offset=10)
    for params in ({"limit": 100, "pid": 1}, {"limit": 100, "pid": 1, "json": 1}):
        response = listing(server, **params)
        assert (response.status_code, response.content) == (200, reference)
        assert response.headers["Content-Type"] == "text/xml; charset=utf-8"


def tag_list(server, **params):
    response = requests.get(server.url + "/index.php", params={"page": "dapi", "s": "tag", "q": "index", **params},
                            timeout=10)
    assert response.headers["Content-Type"] == "text/xml; charset=utf-8"
    root = ElementTree.fromstring(response.content)
    assert root.tag == "tags" and root.attrib == {"type": "array"}, response.text[:200]
    return [dict(t.attrib) for t in root]


def test_tag_list_with_counts(shared_data, safebooru_site):
    posts = [ServedPost(id=i, tags=tags.split(), data=b"x", width=1, height=1, image="x.png")
             for i, tags in [(1, "blue_hair solo"), (2, "blue_hair long_hair"), (3, "猫耳 blue_hair"),
                             (4, "long_hair solo 猫耳")]]
    server = safebooru_site(posts, tag_types={"solo": 5})
    ref = ElementTree.fromstring(read_api_example(shared_data, "tags_xml_example.xml"))
    everything = tag_list(server)
    assert [list(t) for t in everything] == [list(ref[0].attrib)] * 4  # type ambiguous count name id
    counts = {t["name"]: (t["count"], t["id"], t["type"]) for t in everything}
    assert counts == {"blue_hair": ("3", "1", "0"), "solo": ("2", "2", "5"), "long_hair": ("2", "3", "0"),
                      "猫耳": ("2", "4", "0")}
    assert [t["name"] for t in everything] == ["blue_hair", "solo", "long_hair", "猫耳"]  # count, then first use
    assert [t["name"] for t in tag_list(server, name_pattern="%_hair")] == ["blue_hair", "long_hair"]
    assert [t["name"] for t in tag_list(server, name_pattern="s_l_")] == ["solo"]
    assert [t["name"] for t in tag_list(server, names="猫耳 solo nothing")] == ["solo", "猫耳"]
    assert [t["name"] for t in tag_list(server, after_id=2, orderby="id", order="asc")] == ["long_hair", "猫耳"]
    assert [t["name"] for t in tag_list(server, limit=2, pid=1)] == ["long_hair", "猫耳"]
    assert [t["name"] for t in tag_list(server, name="solo", json=1)] == ["solo"]  # XML even for json=1
