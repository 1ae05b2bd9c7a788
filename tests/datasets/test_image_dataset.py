import os

import numpy
import pytest
from PIL import Image

from chainer_dcgan.datasets import ImageDataset, UnreadableImageWarning
from chainer_dcgan.datasets.manifest import ManifestWriter


def _write(path, size=(96, 96), mode="RGB", value=200):
    path.parent.mkdir(parents=True, exist_ok=True)
    Image.new(mode, size, value if mode in ("L", "P") else (value, 0, 0)).save(path)


def test_folder_without_manifest_reads_every_image(tmp_path):
    _write(tmp_path / "a.png")
    _write(tmp_path / "sub" / "b.jpg", size=(120, 80))
    _write(tmp_path / "c.png", mode="L")
    (tmp_path / "notes.txt").write_text("not an image")
    ds = ImageDataset(str(tmp_path))
    assert len(ds) == 3
    for i in range(3):
        x = ds[i]
        assert x.shape == (3, 96, 96) and x.dtype == numpy.float32
        assert -1 <= x.min() and x.max() <= 127 / 128
    assert ds.get_example(0)[0, 0, 0] == pytest.approx((200 - 128) / 128)


def test_bad_images_are_skipped_named_and_counted(tmp_path):
    _write(tmp_path / "good.png")
    (tmp_path / "broken.png").write_bytes(b"\x89PNG\r\n\x1a\nnot really")
    (tmp_path / "empty.jpg").write_bytes(b"")
    with pytest.warns(UnreadableImageWarning) as record:
        ds = ImageDataset(str(tmp_path))
    messages = " ".join(str(w.message) for w in record)
    assert "broken.png" in messages and "empty.jpg" in messages and "skipped 2" in messages
    assert len(ds) == 1 and len(ds.skipped) == 2


def test_file_broken_after_listing_does_not_stop_a_run(tmp_path):
    _write(tmp_path / "a.png", value=10)
    _write(tmp_path / "b.png", value=250)
    ds = ImageDataset(str(tmp_path))
    (tmp_path / "a.png").write_bytes(b"garbage")
    with pytest.warns(UnreadableImageWarning, match="a.png"):
        x = ds[0]
    assert x[0, 0, 0] == pytest.approx((250 - 128) / 128)  # the next image stands in
    assert len(ds.skipped) == 1


def test_manifest_tags_and_in_memory(tmp_path):
    _write(tmp_path / "img" / "1.png", value=50)
    with ManifestWriter(tmp_path) as w:
        w.write({"file": "img/1.png", "tags": ["long_hair", "smile"]})
    ds = ImageDataset(str(tmp_path), in_memory=True)
    (tmp_path / "img" / "1.png").unlink()  # held in memory: the file is no longer needed
    assert ds.tags(0) == ["long_hair", "smile"]
    assert ds[0][0, 0, 0] == pytest.approx((50 - 128) / 128)


def test_missing_or_empty_folder_is_named(tmp_path):
    with pytest.raises(FileNotFoundError, match="nowhere"):
        ImageDataset(str(tmp_path / "nowhere"))
    with pytest.raises(ValueError, match="no readable images"):
        ImageDataset(str(tmp_path))


@pytest.mark.parametrize("size", [64, 128, 256])
def test_images_are_resized_to_the_model_size(tmp_path, size):
    _write(tmp_path / "a.png", size=(96, 96), value=40)
    _write(tmp_path / "b.png", size=(300, 200), value=220)
    ds = ImageDataset(str(tmp_path), size=size)
    for i, value in ((0, 40), (1, 220)):
        x = ds[i]
        assert x.shape == (3, size, size)
        assert x[0].mean() == pytest.approx((value - 128) / 128, abs=1e-6)


def _dds(fourcc=b"ZZZZ"):
    """A DDS texture header that PIL opens and cannot decode (NotImplementedError, not OSError)."""
    import struct
    header = b"DDS " + struct.pack("<7I", 124, 0x1007, 64, 64, 2048, 0, 0) + b"\0" * 44
    return header + struct.pack("<2I4s5I", 32, 0x4, fourcc, 0, 0, 0, 0, 0) + struct.pack("<5I", 0x1000, 0, 0, 0, 0)


def _truncated_png(tmp_path):
    _write(tmp_path / "whole.png")
    data = (tmp_path / "whole.png").read_bytes()
    os.unlink(tmp_path / "whole.png")
    return data[:len(data) // 2]


@pytest.mark.parametrize("verify", [True, False])
def test_files_pil_opens_but_cannot_decode_are_skipped(tmp_path, verify):
    """A DDS file named .png (PIL raises NotImplementedError) and a truncated PNG: skipped, named."""
    _write(tmp_path / "b_good.png", value=250)
    (tmp_path / "a_texture.png").write_bytes(_dds())
    (tmp_path / "a_texture2.png").write_bytes(_dds(b"DX10") + b"\x0f\x27\0\0" * 5)
    (tmp_path / "a_half.png").write_bytes(_truncated_png(tmp_path))
    with pytest.warns(UnreadableImageWarning) as record:
        ds = ImageDataset(str(tmp_path), verify=verify)
        x = ds[0]
    messages = " ".join(str(w.message) for w in record)
    assert "a_texture.png" in messages and "NotImplementedError" in messages, messages
    assert x[0, 0, 0] == pytest.approx((250 - 128) / 128)
    if verify:
        assert len(ds) == 1 and len(ds.skipped) == 3
