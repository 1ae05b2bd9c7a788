"""Odd inputs: 16-bit PNGs, FIFOs in datasets, extensions that name a format, unreadable real images,
non-UTF-8 manifests, NaN weights, unknown tags."""
import io
import os
import threading

import cv2
import numpy
import pytest
from PIL import Image
from conftest import run_script

from chainer_dcgan.collection import faces
from chainer_dcgan.datasets import ImageDataset
from chainer_dcgan.datasets.images import list_images
from chainer_dcgan.datasets.manifest import ManifestError, read_manifest
from chainer_dcgan.utils.images import read_image, save_image
from chainer_dcgan.zspace import tagging


def _png16(values):
    ok, buf = cv2.imencode(".png", values)
    assert ok
    return buf.tobytes()


def test_16_bit_grey_and_rgb_pngs_are_scaled_not_clipped():
    rs = numpy.random.RandomState(0)
    grey = rs.randint(0, 65536, (16, 16)).astype(numpy.uint16)
    data = _png16(grey)
    assert Image.open(io.BytesIO(data)).mode in ("I", "I;16")
    image = read_image(data)
    expected = numpy.rint(grey * (255 / 65535)).astype(numpy.uint8)
    assert numpy.array_equal(image[..., 0], expected) and numpy.array_equal(image[..., 2], expected)
    assert 100 < image.mean() < 155  # uniform noise stays mid-grey, not a white square
    rgb = rs.randint(0, 65536, (16, 16, 3)).astype(numpy.uint16)
    image = read_image(_png16(rgb))  # OpenCV writes BGR
    assert numpy.abs(image.astype(int) - (rgb[..., ::-1] >> 8)).max() <= 1


def _fifo(path):
    os.mkfifo(path)
    return path


def test_fifos_named_like_images_are_skipped(tmp_path):
    save_image(tmp_path / "a.png", numpy.full((96, 96, 3), 200, numpy.uint8))
    _fifo(tmp_path / "b.png")
    assert [r["file"] for r in list_images(str(tmp_path))] == ["a.png"]
    assert [item[0] for item in faces.list_inputs(str(tmp_path))] == ["a.png"]
    # named by a manifest: skipped without opening it (opening would wait for a writer)
    (tmp_path / "manifest.jsonl").write_text('{"file": "a.png"}\n{"file": "b.png"}\n')
    result = []
    worker = threading.Thread(target=lambda: result.append(ImageDataset(str(tmp_path), in_memory=True)), daemon=True)
    with pytest.warns(UserWarning, match="b.png"):
        worker.start()
        worker.join(30)
    assert not worker.is_alive(), "ImageDataset blocked on a FIFO"
    assert len(result[0]) == 1 and result[0].skipped[0][1] == "not a regular file"


def test_a_fifo_named_in_a_scrapes_posts_is_skipped_by_crop_faces(tmp_path, shared_data):
    """posts.jsonl names its files itself, past the folder listing's regular-file check."""
    scrape = tmp_path / "scrape"
    os.makedirs(scrape / "images")
    save_image(scrape / "images" / "a.png", numpy.full((96, 96, 3), 200, numpy.uint8))
    _fifo(scrape / "images" / "b.png")
    (scrape / "posts.jsonl").write_text('{"id": 1, "file": "images/a.png"}\n{"id": 2, "file": "images/b.png"}\n')
    proc = run_script("tools/crop_faces.py", "--input", scrape, "--out", tmp_path / "out", "--cascade",
                      os.path.join(shared_data, faces.CASCADE_NAME), "--workers", 1, "--no-progress", timeout=60)
    assert "skipped images/b.png: not a regular file" in proc.stderr.splitlines(), proc.stderr
    assert "images read 1, faces written 0, skipped (unreadable) 1, without a face 1" in proc.stdout


@pytest.mark.parametrize("ext, magic", [(".gif", b"GIF8"), (".tiff", b"II*\x00"), (".bmp", b"BM"),
                                        (".jpg", b"\xff\xd8"), (".png", b"\x89PNG"), (".webp", b"RIFF")])
def test_the_extension_decides_the_format(tmp_path, ext, magic):
    path = tmp_path / ("x" + ext)
    save_image(path, numpy.zeros((8, 8, 3), numpy.uint8))
    assert path.read_bytes().startswith(magic)


def test_an_unknown_extension_is_refused(tmp_path):
    for name in ("grid", "grid.txt"):
        with pytest.raises(ValueError, match="not an image format"):
            save_image(tmp_path / name, numpy.zeros((8, 8, 3), numpy.uint8))
    assert os.listdir(tmp_path) == []


def test_unreadable_real_images_are_left_out_not_replaced(tmp_path, inception_extractor):
    from chainer_dcgan.evaluation import metrics

    rs = numpy.random.RandomState(0)
    for i in range(4):
        save_image(tmp_path / "{}.png".format(i), rs.randint(0, 256, (96, 96, 3)).astype(numpy.uint8))
    (tmp_path / "4.png").write_bytes(b"not a png")
    (tmp_path / "5.png").write_bytes(b"")
    with pytest.warns(UserWarning, match="unreadable"):
        features, _ = metrics.dataset_features(str(tmp_path), inception_extractor, None, cache=False)
    assert len(features) == 4  # only what was read; no neighbour counted twice
    assert len(numpy.unique(features.round(4), axis=0)) == 4


def test_non_utf8_manifest_names_file_and_line(tmp_path):
    (tmp_path / "manifest.jsonl").write_bytes(b'{"file": "a.png"}\n{"file": "b\xff.png"}\n')
    with pytest.raises(ManifestError, match=r"manifest.jsonl:2: not UTF-8"):
        read_manifest(str(tmp_path))
    (tmp_path / "manifest.jsonl").write_bytes(b'{"file": "a.png"}\n{"file": "b\xc3')  # torn inside a character
    assert [r["file"] for r in read_manifest(str(tmp_path))] == ["a.png"]


def test_unknown_tags_are_named(tmp_path):
    for i in range(4):
        save_image(tmp_path / "{}.png".format(i), numpy.zeros((96, 96, 3), numpy.uint8))
    (tmp_path / "manifest.jsonl").write_text("".join(
        '{{"file": "{}.png", "tags": ["{}"]}}\n'.format(i, "red" if i % 2 else "blue") for i in range(4)))
    with pytest.raises(tagging.TaggedDatasetError, match="^tags: nosuchtag not on any training image"):
        tagging.load_tagged_faces(str(tmp_path), ["red", "nosuchtag"], 1)
    assert tagging.load_tagged_faces(str(tmp_path), ["red"], 1)[2] == ["red"]
