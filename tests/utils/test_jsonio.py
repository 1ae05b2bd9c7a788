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
