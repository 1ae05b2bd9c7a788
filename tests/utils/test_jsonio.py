"""Deeply nested JSON: every reader of the project answers with its own error, never RecursionError."""
import json
import os

import pytest

from chainer_dcgan import export, zspace
from chainer_dcgan.datasets import manifest
from chainer_dcgan.utils import jsonio
from chainer_dcgan.zspace import tagging

DEEP = "[" * 100000 + "]" * 100000


def test_depth_limit_and_ordinary_documents():
    assert jsonio.loads('{"a": [1, [2, {"b": "[[[[[[["}]]}') == {"a": [1, [2, {"b": "[[[[[[["}]]}
    ok = "[" * jsonio.MAX_DEPTH + "]" * jsonio.MAX_DEPTH
    assert jsonio.loads(ok) is not None
    with pytest.raises(json.JSONDecodeError, match="nested deeper than 64"):
        jsonio.loads("[" + ok + "]")
    with pytest.raises(json.JSONDecodeError, match="nested deeper"):
        jsonio.loads(DEEP.encode())
    # brackets inside strings (escaped quotes too) do not count
    text = json.dumps({"s": "[" * 500 + '\\"' + "{" * 500})
    assert jsonio.loads(text)["s"].startswith("[[[")


def test_each_reader_refuses_a_deep_document_with_its_own_error(tmp_path):
    path = tmp_path / "deep.json"
    path.write_text(DEEP)
    with pytest.raises(tagging.TagVectorFileError, match="deep.json"):
        tagging.read_tag_vectors(str(path))
    with pytest.raises(zspace.ZFileError, match="deep.json"):
        zspace.read_z(str(path))
    (tmp_path / export.MANIFEST).write_text(DEEP)
    with pytest.raises(export.ExportError):
        export.read_demo_manifest(str(tmp_path))
    (tmp_path / manifest.MANIFEST_NAME).write_text(DEEP + "\n")
    with pytest.raises(manifest.ManifestError, match="manifest.jsonl:1"):
        manifest.read_manifest(str(tmp_path))
    assert os.path.exists(path)  # nothing removed


@pytest.mark.parametrize("kind, good, bad", [
    ("int", [0, -3, 10 ** 30], ["1", 1.0, True, None, [1]]),
    ("positive", [1, 7], [0, -1, "abc", 1e999, [1], False]),
    ("count", [0, 5], [-1, 2.5]),
    ("number", [0, 1.5, -2], [float("inf"), float("nan"), "1", True]),
    ("strings", [[], ["a", "b"]], ["a", 5, ["a", 1], {"a": 1}]),
    ("numbers", [[], [1, 2.5]], [[1, "2"], [float("nan")], [True]]),
    ("object", [{}], [[], "x"]),
])
def test_expect_names_the_field_and_the_kind(kind, good, bad):
    for value in good:
        assert jsonio.expect(value, kind, "x") is value
    for value in bad:
        with pytest.raises(jsonio.WrongType, match=r"^'f' must be .*, got "):
            jsonio.expect(value, kind, "'f'")
    assert jsonio.expect(None, kind, "x", optional=True) is None


def test_expect_shortens_a_long_value():
    with pytest.raises(jsonio.WrongType) as e:
        jsonio.expect("x" * 10000, "int", "'id'")
    assert len(str(e.value)) < 100 and str(e.value).endswith("...")
