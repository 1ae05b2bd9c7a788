import io

import numpy
import pytest
from PIL import Image

from chainer_dcgan.utils.images import read_image, save_image, tile, to_array, to_image


def _png(img, mode):
    buf = io.BytesIO()
    Image.fromarray(img).convert(mode).save(buf, format="PNG")
    return buf.getvalue()


def test_to_array_is_the_original_scaling():
    img = numpy.array([[[0, 128, 255]]], dtype=numpy.uint8)
    x = to_array(img)
    assert x.dtype == numpy.float32 and x.shape == (3, 1, 1)
    assert x.ravel().tolist() == [-1.0, 0.0, 127 / 128]
    assert numpy.array_equal(to_image(x), img)


def test_to_image_clips_out_of_range_output():
    x = numpy.array([-3.0, 0.5, 9.0], numpy.float32).reshape(3, 1, 1)
    assert to_image(x).ravel().tolist() == [0, 192, 255]


@pytest.mark.parametrize("mode", ["L", "RGBA", "P", "RGB"])
def test_read_image_converts_modes_to_rgb(mode, rng):
    img = rng.randint(0, 256, (20, 30, 3)).astype(numpy.uint8)
    out = read_image(_png(img, mode))
    assert out.shape == (20, 30, 3) and out.dtype == numpy.uint8
    if mode in ("RGB", "RGBA"):
        assert numpy.array_equal(out, img)


def test_read_image_resizes_with_area_filter():
    img = numpy.zeros((192, 192, 3), numpy.uint8)
    img[::2] = 255  # stripes average to mid-grey under area filtering
    out = read_image(_png(img, "RGB"), size=96)
    assert out.shape == (96, 96, 3) and abs(int(out.mean()) - 127) <= 1


def test_read_image_rejects_garbage():
    with pytest.raises(OSError):
        read_image(b"not an image")


def test_tile_layout():
    arrays = numpy.stack([numpy.full((3, 4, 5), v, numpy.float32) for v in (-1.0, 0.0, 0.5)])
    grid = tile(arrays, 2, 2)
    assert grid.shape == (8, 10, 3)
    assert grid[0, 0, 0] == 0 and grid[0, 5, 0] == 128 and grid[4, 0, 0] == 192 and grid[4, 5, 0] == 0
    with pytest.raises(ValueError, match="2x1"):
        tile(arrays, 2, 1)


def test_save_image_is_atomic_and_readable(tmp_path):
    path = tmp_path / "sub" / "a.png"
    img = numpy.arange(48, dtype=numpy.uint8).reshape(4, 4, 3)
    save_image(path, img)
    assert numpy.array_equal(read_image(str(path)), img)
    assert [p.name for p in (tmp_path / "sub").iterdir()] == ["a.png"]


def test_save_image_with_a_palette_is_smaller_and_close(tmp_path):
    rs = numpy.random.RandomState(0)
    table = rs.randint(0, 256, (40, 3))  # 40 flat colours in 8x8 blocks, plus noise
    smooth = numpy.kron(table[rs.randint(0, 40, (12, 12))], numpy.ones((8, 8, 1))).astype(numpy.uint8)
    img = numpy.clip(smooth + rs.randint(-6, 7, smooth.shape), 0, 255).astype(numpy.uint8)  # noisy, like faces
    save_image(tmp_path / "full.png", img)
    save_image(tmp_path / "pal.png", img, colors=64)
    back = read_image(str(tmp_path / "pal.png"))
    assert back.shape == img.shape and len(numpy.unique(back.reshape(-1, 3), axis=0)) <= 64
    assert numpy.abs(back.astype(int) - img).mean() < 12
    assert (tmp_path / "pal.png").stat().st_size < 0.7 * (tmp_path / "full.png").stat().st_size
    with pytest.raises(ValueError, match="a.jpg: a palette of 64 colours"):
        save_image(tmp_path / "a.jpg", img, colors=64)
