"""A hostile or broken safebooru, and hostile records on disk: wrong types (issue 27, family 5) and
limits on what a server may send (family 4). Real servers on 127.0.0.1."""
import json

import pytest

from chainer_dcgan.collection.safebooru import MalformedResponse, PostStore, SafebooruError, parse_posts

MD5 = "0123456789abcdef0123456789abcdef"
POST = {"id": 7, "hash": MD5, "image": "a.png", "directory": "1", "width": 10, "height": 10,
        "rating": "general", "tags": "1girl solo"}


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
