"""Differentiable augmentation of D's inputs (DiffAugment, Zhao et al. 2020), for NumPy and CuPy.

D sees every image, real or fake, through the same random colour change, translation and cutout,
so it cannot memorise a small training set; because each step is differentiable, G's gradient
passes through it. This is a training option of the modern recipe, never part of the faithful one.

Each step acts on ``float32 (N, C, H, W)`` images (a ``chainer.Variable`` or an array on any
device) with its own random draw per image:

* ``"color"``: brightness ``+ (u - 0.5)``, saturation ``x (2u)`` about the pixel's channel mean,
  contrast ``x (u + 0.5)`` about the image's mean, ``u ~ U[0, 1)``;
* ``"translation"``: a shift of up to 1/8 of the side in each direction, filled with zeros;
* ``"cutout"``: a square of half the side (its centre anywhere in the image) set to zero.

The draws come from a host ``numpy.random.RandomState`` (the updater's, saved in snapshots), so a
resumed run replays them on any device.
"""
import chainer
import chainer.functions as F
import numpy

POLICIES = ("color", "translation", "cutout")
TRANSLATION_RATIO = 0.125
CUTOUT_RATIO = 0.5


def check_steps(steps):
    """``steps`` as a tuple; ValueError naming any that is not one of :data:`POLICIES`."""
    steps = tuple(steps)
    unknown = [step for step in steps if step not in POLICIES]
    if unknown:
        raise ValueError("unknown augmentation step(s) {} (known: {})".format(
            ", ".join(map(repr, unknown)), ", ".join(POLICIES)))
    return steps


def parse_policy(text):
    """``"color,translation,cutout"`` -> a tuple of step names; raises ValueError for an unknown one."""
    steps = tuple(s.strip() for s in str(text).split(",") if s.strip())
    if steps and set(steps) <= set(POLICIES):
        return steps
    raise ValueError("augmentation policy {!r}: expected a comma-separated subset of {}".format(
        text, ", ".join(POLICIES)))


def color(x, random_state):
    """Random brightness, saturation and contrast, one draw each per image (see the module)."""
    n = x.shape[0]
    xp = chainer.backend.get_array_module(x)

    def draw():
        return xp.asarray(random_state.uniform(size=(n, 1, 1, 1)).astype(x.dtype))

    x = x + (draw() - 0.5)
    mean = F.broadcast_to(F.mean(x, axis=1, keepdims=True), x.shape)
    x = (x - mean) * (draw() * 2) + mean
    mean = F.broadcast_to(F.mean(x, axis=(1, 2, 3), keepdims=True), x.shape)
    return (x - mean) * (draw() + 0.5) + mean


def shift_matrices(shifts, size, xp=numpy, dtype=numpy.float32):
    """``(N, size, size)`` matrices ``S`` with ``(S @ v)[i] = v[i - shift]`` (zero outside)."""
    shifts = numpy.asarray(shifts).reshape(-1, 1, 1)
    i = numpy.arange(size).reshape(1, size, 1)
    j = numpy.arange(size).reshape(1, 1, size)
    return xp.asarray((j == i - shifts).astype(dtype))


def translation(x, random_state, ratio=TRANSLATION_RATIO):
    """Each image shifted by whole pixels, up to ``ratio`` of its side each way, zeros filling in.

    The shifts are products with 0/1 shift matrices, rows then columns, so the step runs as two
    batched matrix products on either device and its backward pass is the transposed shift.
    """
    n, c, h, w = x.shape
    xp = chainer.backend.get_array_module(x)
    reach_h, reach_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    dy = random_state.randint(-reach_h, reach_h + 1, size=n)
    dx = random_state.randint(-reach_w, reach_w + 1, size=n)
    rows = F.reshape(F.transpose(x, (0, 2, 1, 3)), (n, h, c * w))
    rows = F.matmul(shift_matrices(dy, h, xp, x.dtype), rows)
    x = F.transpose(F.reshape(rows, (n, h, c, w)), (0, 2, 1, 3))
    cols = F.matmul(F.reshape(x, (n, c * h, w)), shift_matrices(dx, w, xp, x.dtype), transb=True)
    return F.reshape(cols, (n, c, h, w))


def cutout_masks(n, h, w, random_state, ratio=CUTOUT_RATIO):
    """``float32 (N, 1, H, W)`` of ones with one zero square of side ``ratio * H`` (by ``ratio * W``) each.

    The square's centre is uniform over the image, so part of it may fall outside.
    """
    size_h, size_w = int(h * ratio + 0.5), int(w * ratio + 0.5)
    top = random_state.randint(0, h + (1 - size_h % 2), size=n) - size_h // 2
    left = random_state.randint(0, w + (1 - size_w % 2), size=n) - size_w // 2
    rows = numpy.arange(h).reshape(1, h, 1)
    cols = numpy.arange(w).reshape(1, 1, w)
    inside = ((rows >= top.reshape(-1, 1, 1)) & (rows < (top + size_h).reshape(-1, 1, 1))
              & (cols >= left.reshape(-1, 1, 1)) & (cols < (left + size_w).reshape(-1, 1, 1)))
    return (~inside).astype(numpy.float32)[:, None]


def cutout(x, random_state, ratio=CUTOUT_RATIO):
    """Each image with a zero square of ``ratio`` of its side, centred anywhere (:func:`cutout_masks`)."""
    n, _, h, w = x.shape
    xp = chainer.backend.get_array_module(x)
    mask = xp.asarray(cutout_masks(n, h, w, random_state, ratio).astype(x.dtype))
    return x * F.broadcast_to(mask, x.shape)


_STEPS = {"color": color, "translation": translation, "cutout": cutout}


def diff_augment(x, random_state, policy=POLICIES):
    """``x`` through each step of ``policy`` in order, drawing from ``random_state``.

    Args:
        x: ``float32 (N, C, H, W)``, a Variable or an array (NumPy or CuPy).
        random_state (numpy.random.RandomState): the source of every draw.
        policy (tuple of str): steps from :data:`POLICIES`.

    Returns:
        a ``chainer.Variable`` of ``x``'s shape, differentiable with respect to ``x``.
    """
    x = chainer.as_variable(x)
    for step in check_steps(policy):
        x = _STEPS[step](x, random_state)
    return x
