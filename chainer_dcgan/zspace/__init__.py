"""Walking through z-space: sampling, interpolation, variations, and the demo's slider formula.

Every latent vector here is ``float32`` with values in ``[-1, 1]`` (the generator's prior); a single
z has shape ``(D,)`` and a batch ``(N, D)``, with ``D = 100`` for the faithful model. Functions
return NumPy arrays; ``generate`` (:func:`chainer_dcgan.models.generate`, here too) turns them into
faces with a generator in test mode.

:func:`compose` is *the* formula of the browser demo; every tool (and the page, in JavaScript)
computes slider faces with it so that the same inputs give the same z everywhere.
"""
import json
import os

import numpy

from chainer_dcgan.models import generate, hparams, sample_z
from chainer_dcgan.utils import jsonio, limits
from chainer_dcgan.utils.atomic import atomic_save, atomic_write

__all__ = ["sample_z", "adam_step", "lerp", "slerp", "interpolate", "loop_path", "variations", "compose", "generate",
           "read_z", "write_z", "ZFileError"]

INTERPOLATIONS = ("linear", "slerp")


def _as_z(z, name, ndim=1):
    z = numpy.asarray(z, dtype=numpy.float32)
    if z.ndim != ndim:
        raise ValueError("{}: expected a {}-d array of latent vectors, got shape {}".format(name, ndim, z.shape))
    return z


def _fractions(steps):
    if int(steps) != steps or steps < 2:
        raise ValueError("steps must be an integer >= 2 (both ends included), got {!r}".format(steps))
    return numpy.linspace(0.0, 1.0, int(steps))


def lerp(z_a, z_b, steps):
    """``steps`` points on the segment from ``z_a`` to ``z_b``, both ends included.

    Args:
        z_a, z_b: ``float (D,)``.
        steps (int): >= 2.

    Returns:
        ``float32 (steps, D)``; row 0 is ``z_a``, the last row ``z_b``. Stays in ``[-1, 1]`` when the
        ends do (the cube is convex).
    """
    z_a, z_b = _as_z(z_a, "z_a"), _as_z(z_b, "z_b")
    if z_a.shape != z_b.shape:
        raise ValueError("z_a and z_b differ in shape: {} vs {}".format(z_a.shape, z_b.shape))
    t = _fractions(steps)[:, None]
    return ((1.0 - t) * z_a.astype(numpy.float64) + t * z_b.astype(numpy.float64)).astype(numpy.float32)


def slerp(z_a, z_b, steps):
    """``steps`` points on the great-circle arc from ``z_a`` to ``z_b`` (spherical interpolation).

    The norm moves smoothly between the two ends' norms instead of dipping in the middle as it
    does on the straight line. Nearly parallel or opposite ends fall back to :func:`lerp`. Points
    are clipped to ``[-1, 1]`` because the arc bulges out of the cube.

    Args:
        z_a, z_b: ``float (D,)``.
        steps (int): >= 2.

    Returns:
        ``float32 (steps, D)`` in ``[-1, 1]``; rows 0 and -1 are the (clipped) ends.
    """
    z_a, z_b = _as_z(z_a, "z_a"), _as_z(z_b, "z_b")
    if z_a.shape != z_b.shape:
        raise ValueError("z_a and z_b differ in shape: {} vs {}".format(z_a.shape, z_b.shape))
    a, b = z_a.astype(numpy.float64), z_b.astype(numpy.float64)
    na, nb = numpy.linalg.norm(a), numpy.linalg.norm(b)
    if na == 0.0 or nb == 0.0:
        return lerp(z_a, z_b, steps)
    cos = numpy.clip(numpy.dot(a, b) / (na * nb), -1.0, 1.0)
    omega = numpy.arccos(cos)
    if numpy.sin(omega) < 1e-6:
        return lerp(z_a, z_b, steps)
    t = _fractions(steps)[:, None]
    out = (numpy.sin((1.0 - t) * omega) * a + numpy.sin(t * omega) * b) / numpy.sin(omega)
    return numpy.clip(out, hparams.Z_LOW, hparams.Z_HIGH).astype(numpy.float32)


def interpolate(z_a, z_b, steps, method="linear"):
    """:func:`lerp` (``method="linear"``) or :func:`slerp` (``"slerp"``): ``float32 (steps, D)``."""
    if method == "linear":
        return lerp(z_a, z_b, steps)
    if method == "slerp":
        return slerp(z_a, z_b, steps)
    raise ValueError("method must be one of {}, got {!r}".format(INTERPOLATIONS, method))


def loop_path(keys, steps, method="linear"):
    """A closed tour through the key vectors ``keys`` for an animation that loops seamlessly.

    Args:
        keys: ``float (K, D)``, K >= 2 key vectors, visited in order and then back to the first.
        steps (int): frames per leg, >= 2 (the leg's end is the next leg's start, so it is not repeated).
        method (str): ``"linear"`` or ``"slerp"``.

    Returns:
        ``float32 (K * (steps - 1), D)``: frame 0 is ``keys[0]``, and the frame after the last would
        be ``keys[0]`` again.
    """
    keys = _as_z(keys, "keys", ndim=2)
    if len(keys) < 2:
        raise ValueError("keys: a loop needs at least 2 vectors, got {}".format(len(keys)))
    legs = [interpolate(keys[i], keys[(i + 1) % len(keys)], steps, method)[:-1] for i in range(len(keys))]
    return numpy.concatenate(legs).astype(numpy.float32)


def variations(z, n, strength, random_state=None):
    """``n`` neighbours of ``z``: ``clip(z + strength * u, -1, 1)`` with ``u`` uniform in ``[-1, 1]``.

    ``strength`` 0 returns copies of ``z``; 1 adds noise as wide as the prior itself.

    Args:
        z: ``float (D,)`` in ``[-1, 1]``.
        n (int): how many neighbours.
        strength (float): >= 0.
        random_state (numpy.random.RandomState or int or None): source of the noise (an int seeds it).

    Returns:
        ``float32 (n, D)`` in ``[-1, 1]``.
    """
    z = _as_z(z, "z")
    if not strength >= 0:
        raise ValueError("strength must be >= 0, got {!r}".format(strength))
    noise = sample_z(n, z.shape[0], random_state)
    out = z.astype(numpy.float64) + float(strength) * noise
    return numpy.clip(out, hparams.Z_LOW, hparams.Z_HIGH).astype(numpy.float32)


def compose(z0, strength, sliders=None, vectors=None):
    """The demo's formula: ``z = clip(strength * z0 + sum_i sliders[i] * vectors[i], -1, 1)``.

    Computed in float64 and rounded once to float32, summing the tag terms in order ``i = 0, 1, ...``
    (as the page's JavaScript does), so Python and the page agree to the last float32 bit.

    Args:
        z0: ``float (D,)`` or a batch ``(N, D)``, usually uniform in ``[-1, 1]``.
        strength (float): the noise-strength slider, scales ``z0`` (the original's page: 0..1).
        sliders: ``float (K,)`` slider values in ``[-1, 1]`` (one per tag), or ``(N, K)`` for one
            set per row of ``z0``; None or empty means no tags.
        vectors: ``float (K, D)`` tag vectors (``max |v_i| = 1`` each, see
            :func:`chainer_dcgan.zspace.tagging.tag_vectors`); None when ``sliders`` is.

    Returns:
        ``float32`` of ``z0``'s shape (or ``(N, D)`` for batched sliders), in ``[-1, 1]``.
    """
    z0 = numpy.asarray(z0, dtype=numpy.float64)
    if z0.ndim not in (1, 2):
        raise ValueError("z0: expected shape (D,) or (N, D), got {}".format(z0.shape))
    z = float(strength) * z0
    if sliders is not None and numpy.size(sliders):
        s = numpy.asarray(sliders, dtype=numpy.float64)
        if vectors is None:
            raise ValueError("vectors: required when sliders are given")
        v = numpy.asarray(vectors, dtype=numpy.float64)
        if v.ndim != 2 or v.shape[1] != z0.shape[-1]:
            raise ValueError("vectors: expected shape (K, {}), got {}".format(z0.shape[-1], v.shape))
        if s.ndim not in (1, 2) or s.shape[-1] != v.shape[0]:
            raise ValueError("sliders: expected shape ({0},) or (N, {0}) for {0} vectors, got {1}".format(
                v.shape[0], s.shape))
        if s.ndim == 2 and z0.ndim == 2 and len(s) != len(z0):
            raise ValueError("sliders: {} rows for {} rows of z0".format(len(s), len(z0)))
        for i in range(v.shape[0]):
            z = z + s[..., i:i + 1] * v[i] if s.ndim == 2 else z + s[i] * v[i]
    return numpy.clip(z, hparams.Z_LOW, hparams.Z_HIGH).astype(numpy.float32)


class ZFileError(ValueError):
    """A file of latent vectors that is missing, unreadable or of the wrong shape (named)."""


def _check_npy_header(path):
    """Read a ``.npy`` file's header only and refuse a declared array of more than the memory budget
    (:func:`chainer_dcgan.utils.limits.check_bytes`) or of a dtype that is not numbers: numpy would
    allocate what the header declares before reading a byte of data."""
    with open(path, "rb") as f:
        if f.read(6) != numpy.lib.format.MAGIC_PREFIX:
            return  # not a .npy: numpy.load says what it is
        f.seek(0)
        version = numpy.lib.format.read_magic(f)
        if version == (1, 0):
            shape, _, dtype = numpy.lib.format.read_array_header_1_0(f)
        else:
            shape, _, dtype = numpy.lib.format.read_array_header_2_0(f)
    if dtype.kind not in "biuf":
        raise ValueError("holds {} values, not numbers".format(dtype))
    limits.check_bytes(limits.declared_bytes(shape, numpy.float32) + limits.declared_bytes(shape, dtype),
                       "an array of shape {} ({})".format(shape, dtype))


def read_z(path, z_dim=hparams.Z_DIM):
    """Latent vectors from ``.npy`` (``(D,)`` or ``(K, D)``) or ``.json`` (a list, or a list of lists).

    Returns:
        ``float32 (K, D)`` (a single vector becomes ``K = 1``), clipped to ``[-1, 1]``.

    Raises:
        ZFileError: naming the file, when it is missing, unreadable, not finite or not ``D`` wide.
    """
    path = os.fspath(path)
    try:
        if path.lower().endswith(".json"):
            with open(path, encoding="utf-8") as f:
                z = numpy.asarray(jsonio.load(f), dtype=numpy.float32)
        else:
            _check_npy_header(path)
            z = numpy.load(path, allow_pickle=False)
            if not isinstance(z, numpy.ndarray):  # an .npz archive
                raise ValueError("an archive of several arrays, not one array")
            z = z.astype(numpy.float32)
    except FileNotFoundError:
        raise ZFileError("{}: no such file of latent vectors".format(path)) from None
    except (OSError, ValueError, TypeError) as e:
        raise ZFileError("{}: not a .npy or .json file of latent vectors: {}".format(path, e)) from None
    if z.ndim == 1:
        z = z[None]
    if z.ndim != 2 or z.shape[1] != z_dim or len(z) == 0:
        raise ZFileError("{}: expected shape ({},) or (K, {}), got {}".format(path, z_dim, z_dim, z.shape))
    if not numpy.isfinite(z).all():
        raise ZFileError("{}: holds NaN or infinite values".format(path))
    return numpy.clip(z, hparams.Z_LOW, hparams.Z_HIGH)


def write_z(path, z):
    """Save latent vectors ``float (K, D)`` atomically as ``.npy`` (or ``.json`` by extension)."""
    z = numpy.asarray(z, dtype=numpy.float32)
    if os.fspath(path).lower().endswith(".json"):
        with atomic_write(path, "w") as f:
            json.dump(z.tolist(), f)
    else:
        atomic_save(path, lambda tmp: numpy.save(tmp, z))


def adam_step(x, grad, m, v, t, lr, beta1=0.9, beta2=0.999, eps=1e-8):
    """One Adam update of the NumPy array ``x`` by ``grad`` at step ``t`` (from 1): ``(x, m, v)``, the
    moments updated. What the z-space refinements (inversion's z, the tag vectors) step with."""
    m = beta1 * m + (1 - beta1) * grad
    v = beta2 * v + (1 - beta2) * grad * grad
    return x - lr * (m / (1 - beta1 ** t)) / (numpy.sqrt(v / (1 - beta2 ** t)) + eps), m, v
