"""Inversion: an image in, the z that draws it out (then the same tag vectors as for any z).

Two stages, as in GAN-inversion practice:

* an :class:`Encoder` E (a small CNN like D: image ``(N, 3, S, S)`` -> z ``(N, D)``, tanh-squashed to
  ``[-1, 1]``) trained for one generator G (:func:`train_encoder`): first on pairs ``(G(z), z)`` with
  a z loss and a pixel loss on ``G(E(G(z)))``, then, optionally, on real faces with the pixel loss;
* **refinement** (:func:`refine`): Adam steps on z through G (test mode) from E's guess, z clipped to
  ``[-1, 1]`` after every step, for a fixed number of steps or until the loss stops falling.

:func:`invert` runs both. An encoder file records the identity of the generator it was trained for
(:func:`generator_digest`, a SHA-256 of its weights); :func:`load_encoder` refuses it for another one.
Images are the package's arrays (``(pixel - 128) / 128``, see :mod:`chainer_dcgan.utils.images`).
"""
import collections
import hashlib
import json
import os

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from chainer_dcgan.models import generate, hparams, is_conditional, pretrained, sample_z
from chainer_dcgan.zspace import adam_step
from chainer_dcgan.models.faithful import architecture
from chainer_dcgan.models.serialization import (
    META_KEY, ModelFileError, SafeNpz, expected_values, load_npz_into, model_meta, read_meta, save_model)
from chainer_dcgan.utils.atomic import write_npz
from chainer_dcgan.utils.images import to_array

__all__ = ["Encoder", "EncoderFileError", "Inversion", "generator_digest", "as_arrays", "encode", "refine",
           "invert", "train_encoder", "save_encoder", "load_encoder", "pixel_error"]

ENCODER_CLASS = "Encoder"


class EncoderFileError(ModelFileError):
    """An encoder file that is missing, unreadable, or made for another generator (named)."""


class Encoder(chainer.Chain):
    """Image arrays ``float32 (N, 3, size, size)`` -> z ``float32 (N, z_dim)`` in ``(-1, 1)``.

    D's layout, narrower: 4x4 stride-2 convolutions from ``size`` down to the generator's first map
    (6x6 at 96 px), with ``width, 2 width, ...`` channels (capped at ``8 width``), BatchNorm on all but
    the first and leaky ReLU (0.2), then one Linear to ``z_dim`` and tanh (the prior's range). Inputs
    are clipped to ``[-1, 1]`` first, as a file's pixels are.

    Args:
        z_dim (int): the generator's latent size.
        size (int): image side, one of ``hparams.SIZES``.
        width (int): channels of the first convolution (32: about 1.6 M parameters at 96 px).
        generator (str or None): :func:`generator_digest` of the generator it is trained for.
    """

    def __init__(self, z_dim=hparams.Z_DIM, size=hparams.IMAGE_SIZE, width=32, generator=None):
        super().__init__()
        base, _, _ = architecture(size)
        for name, value, high in (("z_dim", z_dim, 4096), ("width", width, 512)):
            if isinstance(value, bool) or not isinstance(value, (int, numpy.integer)) or not 1 <= value <= high:
                raise ValueError("{} must be an integer in 1..{}, got {!r}".format(name, high, value))
        if generator is not None and not isinstance(generator, str):
            raise ValueError("generator must be a digest string or None, got {!r}".format(generator))
        self.z_dim, self.size, self.width, self.generator = int(z_dim), int(size), int(width), generator
        self.blocks = (size // base).bit_length() - 1
        channels = [3] + [min(8 * width, width * 2 ** i) for i in range(self.blocks)]
        with self.init_scope():
            for i in range(self.blocks):
                setattr(self, "c{}".format(i), L.Convolution2D(channels[i], channels[i + 1], 4, 2, 1))
                if i:
                    setattr(self, "bn{}".format(i), L.BatchNormalization(channels[i + 1]))
            self.fc = L.Linear(channels[-1] * base * base, self.z_dim)

    @property
    def config(self):
        """The constructor's arguments, JSON-ready (the model file's record)."""
        return {"z_dim": self.z_dim, "size": self.size, "width": self.width, "generator": self.generator}

    def forward(self, x):
        h = F.leaky_relu(self.c0(F.clip(x, -1.0, 1.0)), 0.2)
        for i in range(1, self.blocks):
            h = F.leaky_relu(getattr(self, "bn{}".format(i))(getattr(self, "c{}".format(i))(h)), 0.2)
        return F.tanh(self.fc(h))


def generator_digest(generator):
    """SHA-256 (hex) of ``generator``'s floating-point parameters and statistics, as float32, by name.

    The same weights give the same digest on any device and whichever dtype the file stored (a
    float16 file is hashed as the float32 values it loads into).
    """
    sha = hashlib.sha256()
    for name, value in sorted(expected_values(generator).items()):
        if not hasattr(value, "dtype") or value.dtype.kind != "f":
            continue
        array = numpy.ascontiguousarray(chainer.backend.CpuDevice().send(value), dtype=numpy.float32)
        sha.update("{}:{}\n".format(name, array.shape).encode("utf-8"))
        sha.update(array.tobytes())
    return sha.hexdigest()


def as_arrays(images, size):
    """``uint8 (N, size, size, 3)`` images or ``float (N, 3, size, size)`` arrays -> ``float32 (N, 3, size, size)``.

    Raises:
        ValueError: another shape (the message gives the one expected).
    """
    images = numpy.asarray(images)
    if images.dtype == numpy.uint8:
        if images.ndim != 4 or images.shape[1:] != (size, size, 3):
            raise ValueError("images: expected uint8 (N, {0}, {0}, 3), got {1}".format(size, images.shape))
        return numpy.stack([to_array(im) for im in images]) if len(images) else numpy.zeros(
            (0, 3, size, size), numpy.float32)
    if images.ndim != 4 or images.shape[1:] != (3, size, size):
        raise ValueError("images: expected float (N, 3, {0}, {0}), got {1}".format(size, images.shape))
    return images.astype(numpy.float32, copy=False)


def _quantize(x):
    """Arrays as an image file would hold them: clipped and rounded to whole pixel values."""
    return (numpy.clip(numpy.rint(numpy.clip(x, -1.0, 1.0) * 128.0 + 128.0), 0, 255) - 128.0) / 128.0


def pixel_error(a, b):
    """Mean absolute difference per image of two ``(N, 3, S, S)`` arrays after clipping to ``[-1, 1]``,
    in grey levels (0..255 scale): ``float64 (N,)``."""
    a = numpy.clip(numpy.asarray(a, numpy.float64), -1.0, 1.0)
    b = numpy.clip(numpy.asarray(b, numpy.float64), -1.0, 1.0)
    return numpy.abs(a - b).reshape(len(a), -1).mean(axis=1) * 128.0


def _tags(generator, y, n):
    if not is_conditional(generator):
        if y is not None:
            raise ValueError("y: tags are for a conditional generator; this one takes none")
        return None
    if y is None:
        raise ValueError("y: a conditional generator needs the tags of the faces (N, {}) or ({},)".format(
            generator.n_tags, generator.n_tags))
    y = numpy.asarray(y, dtype=numpy.float32)
    y = numpy.broadcast_to(y, (n, y.shape[-1])) if y.ndim == 1 else y
    if y.shape != (n, generator.n_tags):
        raise ValueError("y: expected ({}, {}) tags, got {}".format(n, generator.n_tags, y.shape))
    return numpy.ascontiguousarray(y)


def _draw(generator, z, y):
    """G(z) (Variable, with graph) in test mode: BatchNorm's running statistics, never updated."""
    device = generator.device
    args = [z] + ([chainer.Variable(device.send(y))] if y is not None else [])
    with chainer.using_config("train", False):
        return generator(*args)


def encode(encoder, images, batch_size=100):
    """E's z for the images (test mode, no graph): NumPy ``float32 (N, D)`` in ``[-1, 1]``."""
    x = as_arrays(images, encoder.size)
    out = []
    with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
        for i in range(0, len(x), batch_size):
            out.append(chainer.backend.CpuDevice().send(encoder(encoder.device.send(x[i:i + batch_size])).array))
    if not out:
        return numpy.zeros((0, encoder.z_dim), numpy.float32)
    return numpy.clip(numpy.concatenate(out), hparams.Z_LOW, hparams.Z_HIGH).astype(numpy.float32)


def _losses(generator, z, x, y):
    """Per-image mean squared error of clip(G(z)) against ``x``: the refinement's loss (with graph)."""
    out = F.clip(_draw(generator, z, y), -1.0, 1.0)
    diff = F.reshape(out - x, (len(x), -1))
    return F.mean(diff * diff, axis=1)


def refine(generator, images, z, steps=100, lr=0.05, y=None, patience=None, min_gain=1e-4, batch_size=32):
    """Adam on z through G (test mode) to redraw the images; z clipped to ``[-1, 1]`` after each step.

    Each image's z moves on its own (the loss is a sum of per-image losses and Adam is elementwise).
    The z returned for an image is the best one seen, so refinement never raises its loss.

    Args:
        generator: the G to invert (any device).
        images: ``uint8 (N, S, S, 3)`` or ``float (N, 3, S, S)``.
        z: ``float (N, D)`` start, e.g. :func:`encode`'s.
        steps (int): at most this many steps (0: none).
        lr (float): Adam's step size (betas 0.9, 0.999).
        y: the tags ``(N, K)`` or ``(K,)`` for a conditional G (given, not inferred).
        patience (int or None): stop a batch early when no image's loss fell by ``min_gain``
            (relative) in this many steps; None runs every step.
        batch_size (int): images per forward pass.

    Returns:
        ``(z, history)``: ``float32 (N, D)`` in ``[-1, 1]``, and ``float32 (steps + 1, N)`` the
        per-image loss (mean squared error on the array scale) at each step, step 0 being the start
        (rows after an early stop repeat the last loss).
    """
    x_all = as_arrays(images, generator.size)
    z_all = numpy.clip(numpy.asarray(z, dtype=numpy.float32), hparams.Z_LOW, hparams.Z_HIGH)
    if z_all.shape != (len(x_all), generator.z_dim):
        raise ValueError("z: expected ({}, {}), got {}".format(len(x_all), generator.z_dim, z_all.shape))
    y_all = _tags(generator, y, len(x_all))
    steps = int(steps)
    if steps < 0:
        raise ValueError("steps must be >= 0, got {}".format(steps))
    device, host = generator.device, chainer.backend.CpuDevice()
    best_z = z_all.copy()
    history = numpy.zeros((steps + 1, len(x_all)), numpy.float32)
    for start in range(0, len(x_all), batch_size):
        sl = slice(start, start + batch_size)
        x = device.send(x_all[sl])
        yb = None if y_all is None else y_all[sl]
        zb = z_all[sl].copy()
        m, v = numpy.zeros_like(zb), numpy.zeros_like(zb)
        best = numpy.full(len(zb), numpy.inf)
        stale = 0
        for step in range(steps + 1):
            zv = chainer.Variable(device.send(zb))
            loss = _losses(generator, zv, x, yb)
            values = host.send(loss.array).astype(numpy.float64)
            history[step, sl] = values
            improved = values < best * (1.0 - min_gain)
            better = values < best
            best_z[sl][better] = zb[better]
            best[better] = values[better]
            stale = 0 if improved.any() else stale + 1
            if step == steps or (patience is not None and stale >= patience):
                history[step + 1:, sl] = values
                break
            F.sum(loss).backward()
            zb, m, v = adam_step(zb, host.send(zv.grad), m, v, step + 1, lr)
            zb = numpy.clip(zb, hparams.Z_LOW, hparams.Z_HIGH).astype(numpy.float32)
    return best_z, history


def _best_random(generator, x, y, candidates, seed, batch_size):
    """For each image, the one of ``candidates`` z (uniform, seeded) whose face is closest (mean squared)."""
    z = sample_z(candidates, generator.z_dim, seed)
    faces = generate(generator, z, batch_size, y=None if y is None else y[0])
    f = numpy.clip(faces, -1, 1).reshape(candidates, -1)
    t = numpy.clip(x, -1, 1).reshape(len(x), -1)
    d = (t * t).sum(1)[:, None] - 2 * t @ f.T + (f * f).sum(1)[None]
    return z[numpy.argmin(d, axis=1)]


Inversion = collections.namedtuple("Inversion", ["z", "reconstructions", "start", "history"])
Inversion.__doc__ = """What :func:`invert` found: ``z``, ``float32 (N, D)`` in ``[-1, 1]``; ``reconstructions``,
``float32 (N, 3, S, S)``, G(z) in test mode (unclipped, as :func:`generate` gives); ``start``, ``float32 (N, D)``,
the z refinement started from (E's, or the best random one); ``history``, ``float32 (steps + 1, N)``, the
per-image refinement loss (see :func:`refine`)."""
for _field in Inversion._fields:
    getattr(Inversion, _field).__doc__ = "See :class:`Inversion`."
del _field


def invert(generator, images, encoder=None, steps=100, lr=0.05, y=None, patience=20, candidates=256, seed=0,
           batch_size=32):
    """z for each image: E's guess (or, without an encoder, the best of ``candidates`` random z), refined.

    Args:
        generator: the G to invert.
        images: ``uint8 (N, S, S, 3)`` or ``float (N, 3, S, S)``, S the generator's size.
        encoder (Encoder or None): trained for this generator (see :func:`load_encoder`).
        steps, lr, patience: of :func:`refine` (``steps=0``: E alone).
        y: tags for a conditional G, ``(N, K)`` or ``(K,)``.
        candidates (int), seed (int): the random start without an encoder.

    Returns:
        :class:`Inversion`.
    """
    x = as_arrays(images, generator.size)
    yy = _tags(generator, y, len(x))
    if encoder is not None:
        if encoder.size != generator.size or encoder.z_dim != generator.z_dim:
            raise ValueError("encoder: made for {} px and {} numbers, the generator has {} px and {}".format(
                encoder.size, encoder.z_dim, generator.size, generator.z_dim))
        start = encode(encoder, x, batch_size)
    else:
        start = _best_random(generator, x, yy, candidates, seed, batch_size)
    z, history = refine(generator, x, start, steps, lr, yy, patience, batch_size=batch_size)
    return Inversion(z, generate(generator, z, batch_size, y=yy), start, history)


# --- training -----------------------------------------------------------------------------------------


def _step_random(seed, iteration):
    """The random source of one training step: the same for a run resumed at that step."""
    return numpy.random.RandomState([int(seed) & 0xFFFFFFFF, int(iteration)])


def train_encoder(generator, encoder=None, iterations=1000, batch_size=32, z_weight=1.0, pixel_weight=1.0,
                  real=None, real_iterations=0, y_rows=None, lr=5e-4, seed=0, checkpoint=None,
                  checkpoint_interval=50, callback=None, features=None, feature_weight=0.0):
    """Train an :class:`Encoder` for ``generator`` (which is not changed).

    Stage 1 (``iterations`` steps): fresh z (uniform, seeded per step), images ``G(z)`` rounded to
    pixel values as a file holds them; loss ``z_weight * mean (E(x) - z)^2 + pixel_weight * mean
    |clip(G(E(x))) - x|``. Stage 2 (``real_iterations`` steps, on ``real``): the pixel loss alone.
    G runs in test mode throughout.

    Args:
        generator: the G (on the device to train on; E is moved there).
        encoder (Encoder or None): to continue; None builds one for G (``width`` 32).
        real: ``uint8 (M, S, S, 3)`` real faces for stage 2, or None.
        y_rows: for a conditional G, ``float (M, K)`` tag rows to draw each face's y from.
        seed (int): seeds E's initial weights (when built here) and every step's draws.
        checkpoint (str or None): an npz saved every ``checkpoint_interval`` steps and at the end
            (E, Adam's state, the step); an existing one is resumed from (same seed: the same run).
        callback: ``callback(iteration, stage, {"z": ..., "pixel": ...})`` after every step.
        features: a differentiable map of image arrays to features (e.g. a tag classifier's
            ``features``; run in test mode), for a feature loss in both stages:
            ``feature_weight * mean (features(clip(G(E(x)))) - features(x))^2``.

    Returns:
        the trained :class:`Encoder` (training done in place when one was given).
    """
    if encoder is None:
        numpy.random.seed(seed)  # Chainer's initializers draw from NumPy's global state
        encoder = Encoder(generator.z_dim, generator.size, generator=generator_digest(generator))
        encoder.to_device(generator.device)
    if is_conditional(generator) and y_rows is None:
        raise ValueError("y_rows: a conditional generator needs tag rows to draw y from")
    if real_iterations and real is None:
        raise ValueError("real: stage 2 ({} steps) needs real faces".format(real_iterations))
    if feature_weight and features is None:
        raise ValueError("features: a feature loss (feature_weight {}) needs a feature map".format(feature_weight))
    optimizer = chainer.optimizers.Adam(alpha=lr)
    optimizer.setup(encoder)
    done = 0
    if checkpoint is not None and os.path.exists(checkpoint):
        done = _load_checkpoint(checkpoint, encoder, optimizer)
    device = generator.device
    total = iterations + real_iterations
    for it in range(done, total):
        rs = _step_random(seed, it)
        stage = 1 if it < iterations else 2
        y = None
        if y_rows is not None:
            y = numpy.asarray(y_rows, numpy.float32)[rs.randint(0, len(y_rows), batch_size)]
        if stage == 1:
            z = sample_z(batch_size, generator.z_dim, rs)
            x = _quantize(generate(generator, z, batch_size, y=y)).astype(numpy.float32)
        else:
            x = as_arrays(numpy.asarray(real)[rs.randint(0, len(real), batch_size)], generator.size)
        x = device.send(x)
        with chainer.using_config("train", True):
            z_hat = encoder(x)
        drawn = F.clip(_draw(generator, z_hat, y), -1.0, 1.0)
        pixel = F.mean(F.absolute(drawn - x))
        losses = {"pixel": pixel}
        loss = pixel_weight * pixel
        if feature_weight:
            with chainer.using_config("train", False):
                target = features(x).array
                losses["feature"] = F.mean_squared_error(features(drawn), target)
            loss = loss + feature_weight * losses["feature"]
        if stage == 1:
            losses["z"] = F.mean_squared_error(z_hat, device.send(z))
            loss = loss + z_weight * losses["z"]
        encoder.cleargrads()
        _clear_frozen(generator, features)
        loss.backward()
        optimizer.update()
        if callback is not None:
            callback(it + 1, stage, {k: float(v.array) for k, v in losses.items()})
        if checkpoint is not None and ((it + 1) % checkpoint_interval == 0 or it + 1 == total):
            _save_checkpoint(checkpoint, encoder, optimizer, it + 1)
    _clear_frozen(generator, features)
    return encoder


def _clear_frozen(generator, features):
    """Drop the gradients the backward pass left in G and the feature map: only E learns."""
    generator.cleargrads()
    if isinstance(getattr(features, "__self__", None), chainer.Link):
        features.__self__.cleargrads()


def _save_checkpoint(path, encoder, optimizer, iteration):
    target = {}
    chainer.serializers.DictionarySerializer(target, "encoder/").save(encoder)
    chainer.serializers.DictionarySerializer(target, "optimizer/").save(optimizer)
    target = {k: chainer.backend.CpuDevice().send(v) for k, v in target.items()}
    target["iteration"] = numpy.asarray(iteration, numpy.int64)
    target[META_KEY] = numpy.frombuffer(json.dumps(model_meta(encoder)).encode("utf-8"), numpy.uint8)
    write_npz(path, target)


def _load_checkpoint(path, encoder, optimizer):
    meta = read_meta(path)
    if meta is None or meta.get("class") != ENCODER_CLASS or meta.get("config") != encoder.config:
        raise EncoderFileError("{}: a checkpoint of another encoder ({}), not of this run's {}".format(
            path, None if meta is None else meta.get("config"), encoder.config))
    with SafeNpz(path) as npz:
        load_npz_into(npz, encoder, path="encoder/")
        load_npz_into(npz, optimizer, path="optimizer/")
        if "iteration" not in npz or npz.headers["iteration"][0] != ():
            raise EncoderFileError("{}: no step count".format(path))
        return int(npz["iteration"])


def save_encoder(path, encoder, dtype=numpy.float16):
    """Save an :class:`Encoder` atomically as npz (float16 by default) with its record (class, config
    including the generator's digest)."""
    if encoder.generator is None:
        raise ValueError("encoder: records no generator (build it with generator=generator_digest(G))")
    save_model(path, encoder, dtype=dtype)


def load_encoder(path, generator=None):
    """An :class:`Encoder` from ``path`` (or the one shipped with the model ``path`` names).

    Args:
        generator: when given, the encoder must have been trained for exactly these weights.

    Raises:
        EncoderFileError: naming the file: missing, not an encoder, or made for another generator.
    """
    try:
        path = pretrained.resolve(path, pretrained.ENCODER)
    except pretrained.PretrainedError as e:
        raise EncoderFileError(str(e)) from None
    if not os.path.isfile(path):
        raise EncoderFileError("{}: no such encoder file".format(path))
    meta = read_meta(path)
    if meta is None or meta.get("class") != ENCODER_CLASS:
        raise EncoderFileError("{}: not an encoder file (it holds {})".format(
            path, "no model record" if meta is None else "a " + str(meta.get("class"))))
    try:
        encoder = Encoder(**meta["config"])
    except (TypeError, ValueError) as e:
        raise EncoderFileError("{}: bad encoder record {}: {}".format(path, meta["config"], e)) from None
    if generator is not None:
        digest = generator_digest(generator)
        if encoder.generator != digest:
            raise EncoderFileError("{}: made for another generator (weights {}...), not this one ({}...)".format(
                path, str(encoder.generator)[:12], digest[:12]))
    return load_npz_into(path, encoder)
