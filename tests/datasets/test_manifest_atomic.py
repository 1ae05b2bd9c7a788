import json
import os

import pytest

from chainer_dcgan.datasets.manifest import ManifestError, ManifestWriter, read_manifest
from chainer_dcgan.utils.atomic import atomic_save, atomic_write


def test_manifest_round_trip_keeps_other_keys(tmp_path):
    with ManifestWriter(tmp_path) as w:
        w.write({"file": "a/1.png", "tags": ["long_hair"], "box": [1, 2, 3, 4]})
        w.write({"file": "2.png", "tags": []})
    records = read_manifest(tmp_path)
    assert records[0] == {"file": "a/1.png", "tags": ["long_hair"], "box": [1, 2, 3, 4]}
    assert len(records) == 2


@pytest.mark.parametrize("line, field", [
    ('{"tags": []}', "'file'"),
    ('{"file": "../x.png", "tags": []}', "'file'"),
    ('{"file": "/etc/x.png", "tags": []}', "'file'"),
    ('{"file": "x.png", "tags": "long_hair"}', "'tags'"),
    ('[1, 2]', "JSON object"),
    ('{"file": "x.png", oops}\n', "not valid JSON"),
])
def test_bad_manifest_lines_name_file_line_and_field(tmp_path, line, field):
    (tmp_path / "manifest.jsonl").write_text('{"file": "ok.png", "tags": []}\n' + line + "\n")
    with pytest.raises(ManifestError) as e:
        read_manifest(tmp_path)
    assert "manifest.jsonl:2" in str(e.value) and field in str(e.value)


def test_torn_last_line_is_ignored_and_dropped_on_append(tmp_path):
    (tmp_path / "manifest.jsonl").write_text('{"file": "a.png", "tags": []}\n{"file": "b.p')
    assert [r["file"] for r in read_manifest(tmp_path)] == ["a.png"]
    with ManifestWriter(tmp_path) as w:
        w.write({"file": "c.png", "tags": []})
    lines = (tmp_path / "manifest.jsonl").read_text().splitlines()
    assert [json.loads(x)["file"] for x in lines] == ["a.png", "c.png"]


def test_atomic_write_keeps_old_file_on_error(tmp_path):
    path = tmp_path / "f.txt"
    path.write_text("old")
    with pytest.raises(RuntimeError):
        with atomic_write(path, "w") as f:
            f.write("new")
            raise RuntimeError("boom")
    assert path.read_text() == "old"
    assert os.listdir(tmp_path) == ["f.txt"]
    with atomic_write(path, "w") as f:
        f.write("new")
    assert path.read_text() == "new"


def test_atomic_save_keeps_extension_for_writers(tmp_path):
    seen = []

    def writer(tmp):
        seen.append(tmp)
        with open(tmp, "w") as f:
            f.write("x")

    atomic_save(tmp_path / "m.npz", writer)
    assert seen[0].endswith(".npz") and (tmp_path / "m.npz").read_text() == "x"
    assert os.listdir(tmp_path) == ["m.npz"]
