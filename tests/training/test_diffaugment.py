"""DiffAugment's steps against plain NumPy arithmetic, and their gradients against finite differences."""
import numpy
import pytest
from chainer import gradient_check

import chainer_dcgan  # noqa: F401  (installs the chainer shims)
from chainer_dcgan.training import diffaugment


def images(n=4, c=3, h=16, w=16, seed=0):
    return numpy.random.RandomState(seed).uniform(-1, 1, (n, c, h, w)).astype(numpy.float32)


def shifted(image, dy, dx):
    """``image (C, H, W)`` moved down by dy and right by dx, zeros filling in."""
    out = numpy.zeros_like(image)
    _, h, w = image.shape
    src = image[:, max(0, -dy):h - max(0, dy), max(0, -dx):w - max(0, dx)]
    out[:, max(0, dy):max(0, dy) + src.shape[1], max(0, dx):max(0, dx) + src.shape[2]] = src
    return out


def test_translation_moves_each_image_by_its_own_whole_pixel_shift():
    x = images(n=64)
    out = diffaugment.translation(x, numpy.random.RandomState(3)).array
    draws = numpy.random.RandomState(3)
    dy, dx = draws.randint(-2, 3, size=64), draws.randint(-2, 3, size=64)  # 1/8 of 16 px: up to 2
    assert len(set(zip(dy, dx))) > 10  # many different shifts were tried
    for i in range(64):
        numpy.testing.assert_array_equal(out[i], shifted(x[i], dy[i], dx[i]))


def test_cutout_zeroes_one_square_of_half_the_side_per_image():
    masks = diffaugment.cutout_masks(500, 16, 16, numpy.random.RandomState(1))
    assert masks.shape == (500, 1, 16, 16) and set(numpy.unique(masks)) == {0.0, 1.0}
    zeros = (masks == 0).sum(axis=(1, 2, 3))
    assert zeros.max() == 64 and zeros.min() > 0  # 8 x 8 when inside, clipped at the edges
    assert (zeros < 64).mean() > 0.3  # centres are uniform over the image, so many squares overhang
    for m in masks[:50, 0]:
        rows, cols = numpy.nonzero(m == 0)
        assert (m[rows.min():rows.max() + 1, cols.min():cols.max() + 1] == 0).all()  # one rectangle
    x = images()
    out = diffaugment.cutout(x, numpy.random.RandomState(1)).array
    numpy.testing.assert_array_equal(out, x * diffaugment.cutout_masks(4, 16, 16, numpy.random.RandomState(1)))


def test_color_is_brightness_then_saturation_then_contrast():
    x = images()
    out = diffaugment.color(x, numpy.random.RandomState(5)).array
    draws = numpy.random.RandomState(5)
    b, s, c = (draws.uniform(size=(4, 1, 1, 1)) for _ in range(3))
    y = x.astype(numpy.float64) + (b - 0.5)
    y = (y - y.mean(1, keepdims=True)) * 2 * s + y.mean(1, keepdims=True)
    y = (y - y.mean((1, 2, 3), keepdims=True)) * (c + 0.5) + y.mean((1, 2, 3), keepdims=True)
    numpy.testing.assert_allclose(out, y, atol=1e-5)


def test_same_draws_give_the_same_images_and_the_policy_is_checked():
    x = images()
    a = diffaugment.diff_augment(x, numpy.random.RandomState(9)).array
    b = diffaugment.diff_augment(x, numpy.random.RandomState(9)).array
    c = diffaugment.diff_augment(x, numpy.random.RandomState(10)).array
    numpy.testing.assert_array_equal(a, b)
    assert numpy.abs(a - c).max() > 0.1 and a.shape == x.shape and a.dtype == numpy.float32
    assert diffaugment.parse_policy("color, cutout") == ("color", "cutout")
    for bad in ("", "colour", "color,flip"):
        with pytest.raises(ValueError, match="policy"):
            diffaugment.parse_policy(bad)
    with pytest.raises(ValueError, match="rotate"):
        diffaugment.diff_augment(x, numpy.random.RandomState(0), ("rotate",))


@pytest.mark.parametrize("policy", [("color",), ("translation",), ("cutout",), diffaugment.POLICIES])
def test_gradients_match_finite_differences(policy):
    x = images(n=2, h=8, w=8, seed=2).astype(numpy.float64)
    gy = numpy.random.RandomState(4).standard_normal(x.shape)

    def f(v):  # the same draws on every call, as the check needs
        return diffaugment.diff_augment(v, numpy.random.RandomState(7), policy)

    gradient_check.check_backward(f, x, gy, dtype=numpy.float64, atol=1e-6, rtol=1e-5)
