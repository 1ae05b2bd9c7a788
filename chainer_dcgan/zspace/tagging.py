"""Tag vectors: directions in z-space that add a tag (long hair, glasses, ...) to any face.

The 2015 original shipped 123 such vectors without saying how it made them. Ours are reproducible
and measured:

1. :func:`train_tag_classifier` fits a small multi-label CNN (:class:`TagClassifier`) on the tagged
   face crops of a dataset in the ``manifest.jsonl`` format (:func:`load_tagged_faces`).
2. :func:`tag_vectors` draws many z, generates their faces, labels them with the classifier, and for
   each tag with enough positives (and negatives) finds a direction: ``mean z of faces with it - mean
   z of faces without it`` (``method="mean"``), the normal of a logistic regression of the tag on z
   (``"linear"``), or that normal made orthogonal to the other tags' (``"orthogonal"``, the least
   entangled), scaled so ``max |v_i| = 1`` as the original's were.
3. :func:`measure_effect` reports the classifier's mean probability of each tag on faces from ``z0``
   and from ``z0 + s * v`` (through :func:`chainer_dcgan.zspace.compose`), for ``s = 0.5, 1``: a
   vector that works makes it rise. It also reports how much each slider moves the other tags
   (``off_target``); :func:`clean_sliders` names those that add their tag and little else.

:func:`write_tag_vectors` / :func:`read_tag_vectors` hold the JSON the browser demo loads:
``{"tags": [{"name": "long_hair", "v": [D floats], "count": N, ...}, ...], "z_dim": D}``.
"""
import dataclasses
import json
import math
import os

import chainer
import chainer.functions as F
import chainer.links as L
import numpy

from chainer_dcgan.datasets.manifest import ManifestError, manifest_path, read_manifest
from chainer_dcgan.datasets.tagged import TagVocabularyError, choose_tags, tag_matrix
from chainer_dcgan.models import check_known_tags, hparams, pretrained
from chainer_dcgan.models.serialization import SafeNpz, load_npz_into
from chainer_dcgan.utils import jsonio, limits, parameter_error
from chainer_dcgan.utils.atomic import atomic_write, write_npz
from chainer_dcgan.utils.images import read_image, to_array
from chainer_dcgan.utils.random_state import seeded_global
from chainer_dcgan.zspace import adam_step, compose, generate, sample_z

FORMAT_VERSION = 1


class TagVectorFileError(ValueError):
    """A tag-vector JSON file that is missing, not JSON, or has a malformed field (named)."""


class TaggedDatasetError(ValueError):
    """A dataset that cannot train a tag classifier (no manifest, no usable tags, unreadable image)."""


@dataclasses.dataclass
class TagVector:
    """One tag's direction in z-space.

    Attributes:
        name (str): the tag.
        v (numpy.ndarray): ``float32 (D,)``, ``max |v_i| = 1`` (at most 1 when shortened to a reach).
        count (int): how many of the labelled generated faces had the tag.
        extra (dict): further JSON fields kept as they are (e.g. ``effect``).
    """
    name: str
    v: numpy.ndarray
    count: int
    extra: dict = dataclasses.field(default_factory=dict)


@dataclasses.dataclass
class TagEffect:
    """The measured effect of one tag vector.

    Attributes:
        name (str): the tag.
        base (float): the classifier's mean probability of the tag on faces from ``z0``.
        shifted (dict): ``{s: mean probability on faces from clip(z0 + s * v, -1, 1)}``.
        changes (dict): ``{other tag: mean over the faces of |p(shifted) - p(z0)|}`` at the
            strength ``at`` (1 when measured, else the largest): what the slider moves besides its tag.
        at (float or None): the strength of ``changes``.
    """
    name: str
    base: float
    shifted: dict
    changes: dict = dataclasses.field(default_factory=dict)
    at: float = None

    @property
    def off_target(self):
        """Mean of :attr:`changes` over the other tags (0 when there are none): the entanglement."""
        return float(numpy.mean(list(self.changes.values()))) if self.changes else 0.0

    @property
    def side_effect(self):
        """``(tag, change)``: the other tag this slider moves most, and by how much (``(None, 0.0)`` when
        there are no others). A change above about 0.6 means the slider draws that tag rather than its
        own (an ``animal_ears`` slider that turns the hair blonde)."""
        if not self.changes:
            return None, 0.0
        worst = max(self.changes, key=self.changes.get)
        return worst, self.changes[worst]

    def clean(self, low=0.3, high=0.8, limit=0.1):
        """True when the slider takes its tag from below ``low`` to above ``high`` at strength :attr:`at`
        while its :attr:`off_target` change stays below ``limit`` (issue 21's bar for a good slider)."""
        return (self.at is not None and self.base < low and self.shifted[self.at] > high
                and self.off_target < limit)

    @property
    def rises(self):
        """True when the probability grows with every strength, in order."""
        values = [self.base] + [self.shifted[s] for s in sorted(self.shifted)]
        return all(b > a for a, b in zip(values, values[1:]))


class TagClassifier(chainer.Chain):
    """Multi-label tag classifier: image arrays ``float32 (N, 3, S, S)`` -> logits ``float32 (N, K)``.

    Inputs are the package's arrays (``(pixel - 128) / 128``, clipped here to ``[-1, 1]`` so the
    unbounded generator output reads like an image). Average pooling by ``downscale``, then three
    4x4 stride-2 convolutions (``width``, ``2 width``, ``4 width`` channels) with BatchNorm and
    leaky ReLU, then one Linear layer to a logit per tag. A sigmoid of the logits gives each tag's
    probability (:meth:`predict_proba`).

    Args:
        tags (list of str): the K tag names, in output order.
        image_size (int): S; must be divisible by ``8 * downscale``.
        width (int): channels of the first convolution.
        downscale (int): average-pooling factor applied first (2: 96 -> 48), for speed.
    """

    def __init__(self, tags, image_size=hparams.IMAGE_SIZE, width=16, downscale=2):
        super().__init__()
        self.tags = list(tags)
        if not self.tags:
            raise ValueError("tags: a classifier needs at least one tag")
        if image_size % (8 * downscale):
            raise ValueError("image_size {} is not divisible by 8 * downscale = {}".format(image_size, 8 * downscale))
        self.image_size, self.width, self.downscale = image_size, width, downscale
        side = image_size // downscale // 8
        with self.init_scope():
            self.c0 = L.Convolution2D(3, width, 4, 2, 1)
            self.c1 = L.Convolution2D(width, 2 * width, 4, 2, 1)
            self.c2 = L.Convolution2D(2 * width, 4 * width, 4, 2, 1)
            self.bn0 = L.BatchNormalization(width)
            self.bn1 = L.BatchNormalization(2 * width)
            self.bn2 = L.BatchNormalization(4 * width)
            self.fc = L.Linear(4 * width * side * side, len(self.tags))

    @property
    def config(self):
        """The constructor's arguments, JSON-ready."""
        return {"tags": self.tags, "image_size": self.image_size, "width": self.width, "downscale": self.downscale}

    def features(self, x):
        """The last convolution's activated features ``float32 (N, 4 width, S', S')`` (``S' = S / downscale / 8``),
        what the logits are read from; a feature space for comparing faces (inversion's feature loss)."""
        h = F.clip(x, -1.0, 1.0)
        if self.downscale > 1:
            h = F.average_pooling_2d(h, self.downscale)
        h = F.leaky_relu(self.bn0(self.c0(h)), 0.2)
        h = F.leaky_relu(self.bn1(self.c1(h)), 0.2)
        return F.leaky_relu(self.bn2(self.c2(h)), 0.2)

    def forward(self, x):
        return self.fc(self.features(x))

    def predict_proba(self, x, batch_size=200):
        """Tag probabilities for image arrays ``float (N, 3, S, S)``: NumPy ``float32 (N, K)`` in [0, 1].

        ``x`` may also be ``uint8 (N, S, S, 3)`` images, converted with :func:`~chainer_dcgan.utils.images.to_array`.
        """
        out = []
        with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
            for i in range(0, len(x), batch_size):
                batch = _to_arrays(x[i:i + batch_size])
                p = F.sigmoid(self(self.xp.asarray(batch))).array
                out.append(chainer.backend.CpuDevice().send(p))
        if not out:
            return numpy.zeros((0, len(self.tags)), dtype=numpy.float32)
        return numpy.concatenate(out).astype(numpy.float32, copy=False)


def _to_arrays(batch):
    batch = numpy.asarray(batch)
    if batch.dtype == numpy.uint8:
        return numpy.stack([to_array(img) for img in batch]) if len(batch) else batch.astype(numpy.float32)
    return batch.astype(numpy.float32, copy=False)


def load_tagged_faces(root, tags=None, min_count=10, size=hparams.IMAGE_SIZE, limit=None):
    """The images and tags of a dataset with ``root/manifest.jsonl``.

    Args:
        root (str): dataset folder.
        tags (list of str or None): the tags to learn; None takes every tag found on at least
            ``min_count`` images and missing from at least ``min_count`` (sorted by name), as
            :func:`~chainer_dcgan.datasets.tagged.choose_tags` chooses them for conditional training.
        min_count (int): see ``tags``.
        size (int): images are resized to ``(size, size)``.
        limit (int or None): read only the first ``limit`` records.

    Returns:
        ``(images, labels, tags)``: ``uint8 (N, size, size, 3)``, ``int32 (N, K)`` in {0, 1}, and
        the K tag names.

    Raises:
        TaggedDatasetError: no manifest, a tag asked for that no image has, no tag frequent enough (about
            ``root``, ``tags`` or ``min_count``: :func:`~chainer_dcgan.utils.parameter_error`), or an
            unreadable image (named).
    """
    root = os.fspath(root)
    if not os.path.isfile(manifest_path(root)):
        raise parameter_error(TaggedDatasetError, "dataset", " {}: no manifest.jsonl there (a tagged dataset is "
                              "needed)".format(root))
    try:
        records = read_manifest(root)
    except ManifestError as e:
        raise TaggedDatasetError(str(e)) from e
    if limit is not None:
        records = records[:limit]
    tag_lists = [r["tags"] for r in records]
    try:
        tags = choose_tags(tag_lists, tags, min_count)
    except TagVocabularyError as e:
        raise parameter_error(TaggedDatasetError, e.parameter,
                              "{} (in {})".format(e.detail, manifest_path(root))) from e
    labels = tag_matrix(tag_lists, tags).astype(numpy.int32)  # int32: what sigmoid_cross_entropy takes
    images = numpy.empty((len(records), size, size, 3), dtype=numpy.uint8)
    for i, record in enumerate(records):
        path = os.path.join(root, record["file"])
        try:
            images[i] = read_image(path, size)
        except OSError as e:
            raise TaggedDatasetError("{}: cannot read image: {}".format(path, e)) from e
    return images, labels, tags


def train_tag_classifier(images, labels, tags, epochs=10, batch_size=64, seed=0, width=16, downscale=2,
                         alpha=2e-3, flip=True, device=None):
    """Fit a :class:`TagClassifier` with sigmoid cross-entropy and Adam; deterministic for a seed.

    Args:
        images: ``uint8 (N, S, S, 3)`` images or ``float32 (N, 3, S, S)`` arrays.
        labels: ``int (N, K)`` in {0, 1}.
        tags (list of str): K names.
        epochs (int), batch_size (int), alpha (float): the schedule and Adam's step size.
        seed (int): seeds the weights, the shuffling and the flips.
        width (int), downscale (int): see :class:`TagClassifier`.
        flip (bool): random horizontal flips (tags here do not depend on left/right).
        device: a Chainer device specifier, or None for the CPU.

    Returns:
        the trained :class:`TagClassifier` (on ``device``).
    """
    labels = numpy.asarray(labels, dtype=numpy.int32)
    if len(images) != len(labels) or labels.ndim != 2 or labels.shape[1] != len(tags):
        raise ValueError("images ({}) and labels {} do not match {} tags".format(len(images), labels.shape, len(tags)))
    if len(images) == 0:
        raise ValueError("images: nothing to train on")
    size = images.shape[1] if numpy.asarray(images[:1]).dtype == numpy.uint8 else images.shape[2]
    with seeded_global(seed):
        clf = TagClassifier(tags, image_size=size, width=width, downscale=downscale)
    device = chainer.get_device(device if device is not None else "@numpy")
    clf.to_device(device)
    opt = chainer.optimizers.Adam(alpha=alpha)
    opt.setup(clf)
    rs = numpy.random.RandomState(seed)
    for _ in range(epochs):
        order = rs.permutation(len(images))
        for i in range(0, len(order), batch_size):
            idx = numpy.sort(order[i:i + batch_size])
            x = _to_arrays(images[idx])
            if flip:
                flips = rs.uniform(size=len(idx)) < 0.5
                x = numpy.where(flips[:, None, None, None], x[..., ::-1], x)
            with chainer.using_config("train", True):
                loss = F.sigmoid_cross_entropy(clf(device.send(x)), device.send(labels[idx]))
            clf.cleargrads()
            loss.backward()
            opt.update()
    return clf


def evaluate_classifier(classifier, images, labels, threshold=0.5):
    """Per-tag accuracy of ``classifier`` on held-out ``images``/``labels``, beside chance.

    Returns:
        dict of ``float64 (K,)`` arrays: ``accuracy``; ``baseline`` (always answering the majority
        label); ``balanced`` (mean of the true-positive and true-negative rates; 0.5 is chance).
    """
    labels = numpy.asarray(labels, dtype=bool)
    pred = classifier.predict_proba(images) >= threshold
    pos, neg = labels.sum(0), (~labels).sum(0)
    tpr = (pred & labels).sum(0) / numpy.maximum(pos, 1)
    tnr = (~pred & ~labels).sum(0) / numpy.maximum(neg, 1)
    return {
        "accuracy": (pred == labels).mean(0),
        "baseline": numpy.maximum(pos, neg) / len(labels),
        "balanced": (tpr + tnr) / 2.0,
    }


def save_classifier(path, classifier):
    """Save a :class:`TagClassifier` (weights and constructor arguments) atomically as npz."""
    if classifier.xp is not numpy:
        classifier = classifier.copy(mode="copy")
        classifier.to_cpu()
    target = {}
    chainer.serializers.DictionarySerializer(target).save(classifier)
    target["config.json"] = numpy.array(json.dumps(classifier.config))
    write_npz(path, target)


def _shipped(path, what, error):
    """``path``, or the file ``what`` of the shipped model it names (see :func:`chainer_dcgan.models.pretrained.resolve`)."""
    try:
        return pretrained.resolve(path, what)
    except pretrained.PretrainedError as e:
        raise error(str(e)) from None


def _check_classifier_config(config):
    """Refuse, before a layer is built, a stored configuration outside the sizes a classifier may have
    (a width of 10^6 would ask for terabytes); raises ValueError naming the field and its bound."""
    bounds = {"width": limits.MAX_WIDTH, "downscale": 64, "image_size": max(hparams.SIZES)}
    for key, most in bounds.items():
        value = jsonio.expect(config.get(key, 1), "positive", "config {!r}".format(key))
        if value > most:
            raise limits.TooLarge("config {!r} is {}; at most {}".format(key, value, most))
    tags = jsonio.expect(config.get("tags"), "strings", "config 'tags'")
    if len(tags) > limits.MAX_TAGS:
        raise limits.TooLarge("config 'tags' names {} tags; at most {}".format(len(tags), limits.MAX_TAGS))


def load_classifier(path):
    """A :class:`TagClassifier` saved by :func:`save_classifier`, from ``path`` or the shipped model of that
    name (``"default"``: the classifier its tag vectors were measured with).

    Raises:
        TaggedDatasetError: the file is missing or is not such a classifier.
    """
    path = _shipped(path, pretrained.CLASSIFIER, TaggedDatasetError)
    if not os.path.exists(path):
        raise TaggedDatasetError("{}: no such classifier file (shipped models, by name: {})".format(
            path, ", ".join(pretrained.names()) or "none"))
    try:
        with SafeNpz(path) as npz:
            shape, dtype = npz.headers.get("config.json", ((1,), None))
            if shape != () or dtype.kind != "U" or dtype.itemsize > 4 << 20:
                raise KeyError("no config.json string")
            config = jsonio.loads(str(npz["config.json"]))
            if not isinstance(config, dict):
                raise TypeError("config.json is not a JSON object")
            _check_classifier_config(config)
            clf = TagClassifier(**config)
            load_npz_into(npz, clf)
    except (OSError, KeyError, ValueError, TypeError) as e:
        raise TaggedDatasetError("{}: not a tag classifier saved by save_classifier: {}".format(
            path, e.args[0] if e.args else e)) from None
    return clf


def label_faces(generator, classifier, z, batch_size=100):
    """The classifier's tag probabilities on the faces of ``z``: ``float32 (N, K)`` in [0, 1].

    ``z`` is ``float (N, D)``; faces are generated in test mode, ``batch_size`` at a time.
    """
    z = numpy.asarray(z, dtype=numpy.float32)
    out = [classifier.predict_proba(generate(generator, z[i:i + batch_size], batch_size), batch_size)
           for i in range(0, len(z), batch_size)]
    return numpy.concatenate(out) if out else numpy.zeros((0, len(classifier.tags)), numpy.float32)


METHODS = {
    "mean": "mean z of generated faces with the tag minus without, read by a tag classifier",
    "linear": "normal of a logistic regression of the tag classifier's reading on z",
    "orthogonal": "normal of a logistic regression of the tag classifier's reading on z, "
                  "made orthogonal to the normals of the tags that can go with it",
}


def _sigmoid(x):
    return 1 / (1 + numpy.exp(-numpy.clip(x, -30, 30)))


def fit_normals(z, probs, l2=1e-3, iterations=25, return_bias=False):
    """The normals of per-tag logistic regressions of ``probs`` (soft labels) on ``z``.

    For each tag k it minimises ``mean(cross_entropy(probs[:, k], sigmoid(z @ w + b))) + l2 * |w|^2 / 2``
    by Newton's method (the problem is convex; ``iterations`` steps, stopping early once converged).

    Args:
        z: ``float (N, D)``.
        probs: ``float (N, K)`` in [0, 1].

    Returns:
        ``float64 (K, D)``: row k is ``w`` of tag k (the direction in which its log-odds grow fastest);
        with ``return_bias``, ``(normals, biases float64 (K,))``.
    """
    z = numpy.asarray(z, dtype=numpy.float64)
    probs = numpy.clip(numpy.asarray(probs, dtype=numpy.float64), 0, 1)
    n, d = z.shape
    x = numpy.concatenate([z, numpy.ones((n, 1))], axis=1)
    ridge = numpy.full(d + 1, l2)
    ridge[-1] = 0  # the bias is not shrunk
    normals, biases = numpy.zeros((probs.shape[1], d)), numpy.zeros(probs.shape[1])
    for k in range(probs.shape[1]):
        w = numpy.zeros(d + 1)
        for _ in range(iterations):
            p = _sigmoid(x @ w)
            grad = x.T @ (p - probs[:, k]) / n + ridge * w
            hess = (x * (p * (1 - p))[:, None]).T @ x / n + numpy.diag(ridge + 1e-9)
            step = numpy.linalg.solve(hess, grad)
            w -= step
            if numpy.abs(step).max() < 1e-6:
                break
        normals[k], biases[k] = w[:d], w[d]
    return (normals, biases) if return_bias else normals


def reach_scale(z, v, w, b, reach):
    """The smallest ``c`` in (0, 1] for which a logistic model ``(w, b)`` of a tag predicts a mean
    probability of at least ``reach`` over ``clip(z + c * v, -1, 1)`` (1 when even ``c = 1`` falls short).

    Found by bisection (the prediction grows with ``c`` when ``v`` points along ``w``).
    """
    def mean_prob(c):
        return float(numpy.mean(_sigmoid(numpy.clip(z + c * v, hparams.Z_LOW, hparams.Z_HIGH) @ w + b)))

    if mean_prob(1.0) < reach:
        return 1.0
    low, high = 0.0, 1.0
    for _ in range(30):
        mid = (low + high) / 2
        low, high = (mid, high) if mean_prob(mid) < reach else (low, mid)
    return high


def rivals(labels, ratio=0.1):
    """``bool (K, K)``: tags j, k that (almost) never appear together on the labelled faces.

    ``labels`` is ``bool (N, K)``; j and k are rivals when they co-occur on fewer than ``ratio``
    times the faces they would share if independent (two hair colours, short and long hair). A
    tag is not its own rival.
    """
    labels = numpy.asarray(labels, dtype=numpy.float64)
    together = labels.T @ labels
    counts = labels.sum(0)
    expected = numpy.outer(counts, counts) / max(len(labels), 1)
    result = (together < ratio * expected) & (expected > 0)
    numpy.fill_diagonal(result, False)
    return result


def _orthogonal_to_others(normals, keep=None):
    """Row k of ``normals`` less its projection on the span of the other rows (those with
    ``keep[k, j]`` False when ``keep`` is given: a rival's normal stays in)."""
    result = numpy.empty_like(normals)
    for k in range(len(normals)):
        others = [j for j in range(len(normals)) if j != k and (keep is None or not keep[k, j])]
        if others:
            basis = normals[others]
            coef, *_ = numpy.linalg.lstsq(basis.T, normals[k], rcond=None)
            result[k] = normals[k] - basis.T @ coef
        else:
            result[k] = normals[k]
    return result


def vectors_from_labels(z, probs, tags, threshold=0.5, min_count=20, method="mean", reach=None):
    """Tag vectors from labelled latent vectors: the pure arithmetic of :func:`tag_vectors`.

    For each tag k, the faces with ``probs[:, k] >= threshold`` are its positives; a tag with fewer
    than ``min_count`` positives or negatives is skipped. Its direction depends on ``method``:

    * ``"mean"``: ``mean(z[pos]) - mean(z[neg])`` (the original's kind of vector);
    * ``"linear"``: the normal of a logistic regression of ``probs[:, k]`` on z (:func:`fit_normals`),
      which, unlike the mean difference, does not follow the z-directions of tags that merely
      co-occur with k among the labelled faces;
    * ``"orthogonal"``: that normal less its projection on the normals of the other kept tags that
      are not its :func:`rivals`, so that to first order a slider leaves the log-odds of every tag
      that can go with its own where they were (hair colour stays when the smile slider moves),
      while trading against its rivals (black hair for blonde) as it must.

    Each vector is divided by its largest absolute component. With ``reach``, it is then shortened
    to the length at which the tag's logistic model predicts a mean probability of ``reach`` at
    slider 1 (:func:`reach_scale`): a slider moves z no further than its tag needs, and so moves
    the rest of the face less.

    Args:
        z: ``float (N, D)``.
        probs: ``float (N, K)`` in [0, 1].
        tags (list of str): K names.
        method (str): one of :data:`METHODS`.
        reach (float or None): the mean probability to aim for at slider 1, e.g. 0.9; None: full length.

    Returns:
        list of :class:`TagVector` (``v`` ``float32 (D,)``, ``max |v_i| = 1``, or at most 1 with
        ``reach``), in the order of ``tags``.
    """
    if method not in METHODS:
        raise ValueError("method: expected one of {}, got {!r}".format(", ".join(METHODS), method))
    z = numpy.asarray(z, dtype=numpy.float64)
    probs = numpy.asarray(probs)
    if z.ndim != 2 or probs.shape != (len(z), len(tags)):
        raise ValueError("z {} and probs {} do not match {} tags".format(z.shape, probs.shape, len(tags)))
    counts = (probs >= threshold).sum(0)
    kept = [k for k in range(len(tags)) if min_count <= counts[k] <= len(z) - min_count]
    normals, biases = (fit_normals(z, probs[:, kept], return_bias=True)
                       if kept and (method != "mean" or reach is not None)
                       else (numpy.zeros((len(kept), z.shape[1])), numpy.zeros(len(kept))))
    if method == "mean":
        directions = [z[probs[:, k] >= threshold].mean(0) - z[probs[:, k] < threshold].mean(0) for k in kept]
    elif method == "orthogonal":
        directions = _orthogonal_to_others(normals, rivals(probs[:, kept] >= threshold))
    else:
        directions = normals
    result = []
    for i, (k, v) in enumerate(zip(kept, directions)):
        peak = numpy.abs(v).max()
        if not peak > 0:
            continue
        v = v / peak
        if reach is not None:
            v = v * reach_scale(z, v, normals[i], biases[i], reach)
        result.append(TagVector(tags[k], v.astype(numpy.float32), int(counts[k])))
    return result


def tag_vectors(generator, classifier, n=2000, seed=0, threshold=0.5, min_count=20, batch_size=100, tags=None,
                method="mean", reach=None):
    """Tag vectors of ``generator``'s z-space, read by ``classifier``.

    Draws ``n`` z uniform in ``[-1, 1]`` (seeded), labels their faces (:func:`label_faces`), and
    returns :func:`vectors_from_labels` of them.

    Args:
        tags (list of str or None): only these of the classifier's tags (default: all of them).
        method (str): how a direction is found (:func:`vectors_from_labels`).
        reach (float or None): shorten each vector to reach this mean probability (:func:`vectors_from_labels`).

    Returns:
        list of :class:`TagVector`, ``v`` ``float32 (D,)`` with ``max |v_i| = 1``, in the classifier's order.

    Raises:
        ValueError: ``tags`` empty; :class:`~chainer_dcgan.models.UnknownTagError`: a tag in ``tags`` that
            the classifier does not know (named, with the ones it knows).
    """
    columns = range(len(classifier.tags))
    if tags is not None:
        if not tags:
            raise ValueError("no tag asked for (the classifier knows: {})".format(", ".join(classifier.tags)))
        check_known_tags(classifier.tags, tags, "the classifier")
        columns = [k for k, t in enumerate(classifier.tags) if t in tags]
    z = sample_z(n, generator.z_dim if hasattr(generator, "z_dim") else hparams.Z_DIM, seed)
    probs = label_faces(generator, classifier, z, batch_size)[:, columns]
    return vectors_from_labels(z, probs, [classifier.tags[k] for k in columns], threshold, min_count, method,
                               reach)


def _logit(p):
    return math.log(p / (1 - p))


def _tag_index(classifier, vectors):
    """``{tag: column}`` of the classifier's tags; ValueError naming the tags of ``vectors`` it does not know."""
    index = {t: k for k, t in enumerate(classifier.tags)}
    unknown = [tv.name for tv in vectors if tv.name not in index]
    if unknown:
        raise ValueError("vectors: tags the classifier does not know: {}".format(", ".join(unknown)))
    return index


def refine_vectors(generator, classifier, vectors, z, steps=60, lr=0.03, target=0.9, batch_size=16, seed=0,
                   pull=1 / 30, adapt=1.15):
    """Adam on each tag vector through G and the classifier: add the tag, move the other tags less.

    A direction found from labels alone (:func:`vectors_from_labels`) is a first-order guess: it
    ignores the clipping of ``z`` to ``[-1, 1]``, the generator's curvature, and how far the
    classifier's other tags move with it. Here each vector ``v`` of tag ``k`` is moved, for
    ``steps`` steps on batches of ``z`` (drawn in order from ``z``, seeded), to lower

        ``pull * mean(softplus(logit(target) - l_k(clip(z + v, -1, 1))))
        + mean_{faces, j != k} |p_j(clip(z + v, -1, 1)) - p_j(z)|``

    where ``l`` are the classifier's logits and ``p`` its probabilities on the generated face (test
    mode: BatchNorm's running statistics, nothing updated): the first term asks each face for the
    tag (a smooth hinge that pulls less once the face has it with probability ``target``), the
    second is :attr:`TagEffect.off_target`'s quantity at slider 1, the entanglement to keep small,
    over the tags that can go with ``k``: its :func:`rivals` on the labelled ``z`` (the other hair
    colours for a hair colour) must give way as it comes, so their change is not held against it.
    The tag's weight starts at ``pull`` and is multiplied by ``adapt`` after each step whose faces'
    mean probability of the tag was below ``target`` (up to 1, the weight of the other tags' term: a tag the model
    cannot reach does not buy its reach at any price), divided by it otherwise: the least entangled
    vector that still reaches the tag, rather than a fixed trade between the two terms.

    Args:
        vectors (list of TagVector): the starting vectors (tags the classifier does not know raise ValueError).
        z: ``float (N, D)`` latent vectors to refine on (e.g. the labelled ones; not the measuring ones).
        steps (int): Adam steps per vector (0 returns copies of ``vectors``).
        lr (float): Adam's first step size (z units; betas 0.9, 0.999), decaying linearly to 0.
        target (float): the probability in (0, 1) each face's tag is pulled toward.
        pull (float): the first weight of the tag's term (the default, 1/30, is the fixed weight that
            worked best of 1/4, 1/15 and 1/30 when tried on a few of ``faithful-90k``'s tangled tags:
            they still reached their tag, with the least off-target change).
        adapt (float): the factor (> 1) by which ``pull`` follows the tag's reach.
        batch_size (int): faces per step.
        seed (int): order of the batches.

    Returns:
        list of :class:`TagVector` with the refined ``v`` (``float32 (D,)``), in the order of ``vectors``.
    """
    index = _tag_index(classifier, vectors)
    if not 0 < target < 1:
        raise ValueError("target must be in (0, 1), got {}".format(target))
    if not pull > 0:
        raise ValueError("pull must be > 0, got {}".format(pull))
    if not adapt > 1:
        raise ValueError("adapt must be > 1, got {}".format(adapt))
    if int(steps) < 0:
        raise ValueError("steps must be >= 0, got {}".format(steps))
    z = numpy.asarray(z, dtype=numpy.float32)
    device, host = generator.device, chainer.backend.CpuDevice()
    before = label_faces(generator, classifier, z, max(batch_size, 100))  # test mode, no graph
    rival = rivals(before >= 0.5)
    order = numpy.random.RandomState(seed).permutation(len(z))
    goal = _logit(target)
    result = []
    for tv in vectors:
        k = index[tv.name]
        others = numpy.array([j for j in range(len(classifier.tags)) if j != k and not rival[k, j]], dtype=numpy.int64)
        v = numpy.asarray(tv.v, dtype=numpy.float32).copy()
        m, s = numpy.zeros_like(v), numpy.zeros_like(v)
        weight = float(pull)
        for step in range(int(steps)):
            rows = order[(numpy.arange(batch_size) + step * batch_size) % len(z)]
            param = chainer.Variable(device.send(v))
            zb = device.send(z[rows])
            with chainer.using_config("train", False):
                shifted = F.clip(zb + F.broadcast_to(param, zb.shape), hparams.Z_LOW, hparams.Z_HIGH)
                logits = classifier(generator(shifted))
            probs = F.sigmoid(logits)
            loss = weight * F.mean(F.softplus(goal - logits[:, k]))
            if len(others):
                loss = loss + F.mean(F.absolute(probs[:, others] - device.send(before[rows][:, others])))
            # the vector's gradient alone: none of G's and the classifier's weights (half the work)
            grad, = chainer.grad([loss], [param])
            short = float(probs.array[:, k].mean()) < target
            weight = min(weight * adapt, 1.0) if short else weight / adapt  # never above the other tags' weight
            rate = lr * (1 - step / int(steps))  # decays to 0: the vector settles rather than wanders
            v, m, s = adam_step(v, host.send(grad.array), m, s, step + 1, rate)
            v = v.astype(numpy.float32)
        result.append(TagVector(tv.name, v, tv.count, dict(tv.extra)))
    return result


def calibrate_vectors(generator, classifier, vectors, z, reach, max_scale=2.0, tolerance=0.005, evaluations=6,
                      batch_size=100):
    """Each tag vector scaled to the length at which its tag's mean probability on the faces of ``z`` is ``reach``.

    The scale ``c`` of ``v`` is found through the generator and the classifier themselves, not a model
    of them: the mean probability ``P(c)`` of tag ``k`` over the faces of ``clip(z + c * v, -1, 1)``
    is solved for ``P(c) = reach`` by regula falsi (Illinois) on its log-odds between ``c = 0`` and
    1 (or 1 and ``max_scale`` when ``c = 1`` falls short), which are nearly straight in ``c``; it
    stops once ``P`` is within ``tolerance`` of ``reach`` (taking that ``c``) or after ``evaluations``
    forward passes over ``z`` (taking the smallest ``c`` seen to reach). A slider longer than its tag needs moves
    the face and its other tags further than it must; one shorter does not add its tag. A tag whose
    mean at ``c = 0`` already reaches ``reach`` keeps its vector; one that falls short even at
    ``max_scale`` gets ``max_scale``.

    Args:
        vectors (list of TagVector): tags unknown to the classifier raise ValueError.
        z: ``float (N, D)`` latent vectors (e.g. some of the labelled ones, not the measuring ones).
        reach (float): the mean probability in (0, 1) to aim for at slider 1.
        max_scale (float): the longest scale (> 1).

    Returns:
        ``(vectors, scales)``: new :class:`TagVector` s in the order of ``vectors`` and the scale
        each was multiplied by.
    """
    index = _tag_index(classifier, vectors)
    if not 0 < reach < 1:
        raise ValueError("reach must be in (0, 1), got {}".format(reach))
    if not max_scale > 1:
        raise ValueError("max_scale must be > 1, got {}".format(max_scale))
    z = numpy.asarray(z, dtype=numpy.float32)
    base = label_faces(generator, classifier, z, batch_size).mean(0)
    goal = _logit(reach)

    def gap(p):  # log-odds of the mean probability above the goal's
        return _logit(min(max(p, 1e-6), 1 - 1e-6)) - goal

    result, scales = [], []
    for tv in vectors:
        k = index[tv.name]
        v = numpy.asarray(tv.v, dtype=numpy.float32)

        def mean_prob(c):
            return float(label_faces(generator, classifier, compose(z, 1.0, [c], v[None]), batch_size)[:, k].mean())

        scale = 1.0
        p = mean_prob(1.0) if base[k] < reach else reach
        if abs(p - reach) > tolerance:
            low, f_low, high, f_high, count = 0.0, gap(float(base[k])), 1.0, gap(p), 1
            if f_high < 0:  # short at 1: the root lies beyond
                low, f_low = high, f_high
                p = mean_prob(max_scale)
                high, f_high, count = max_scale, gap(p), 2
            scale, side = high, 0
            while f_high >= 0 and abs(p - reach) > tolerance and count < evaluations:
                c = (low * f_high - high * f_low) / (f_high - f_low)
                p = mean_prob(c)
                f_c, count = gap(p), count + 1
                if f_c < 0:
                    low, f_low = c, f_c
                    f_high = f_high / 2 if side < 0 else f_high  # Illinois: the end that stays halves its value
                    side = -1
                else:
                    high, f_high = c, f_c
                    f_low = f_low / 2 if side > 0 else f_low
                    side = 1
                scale = c if abs(p - reach) <= tolerance else high
        result.append(TagVector(tv.name, (v * scale).astype(numpy.float32), tv.count, dict(tv.extra)))
        scales.append(float(scale))
    return result, scales


def measure_effect(generator, classifier, vectors, n=200, seed=1, strengths=(0.5, 1.0), batch_size=100):
    """How much each tag vector adds its tag, and how much it moves the others, by the classifier's reading.

    For ``n`` seeded ``z0``, the classifier's mean probability of tag ``name`` on faces from ``z0``
    (``base``) and from ``compose(z0, 1, [s], [v]) = clip(z0 + s * v, -1, 1)`` for each ``s``; at
    ``s = 1`` (or the largest strength when 1 is not among them) also each other tag's mean absolute
    change of probability, face by face (``changes``, summarised by ``off_target``).

    Args:
        vectors (list of TagVector): tags unknown to the classifier raise ValueError.
        strengths (tuple of float): the slider values ``s``.

    Returns:
        list of :class:`TagEffect`, in the order of ``vectors``.
    """
    index = _tag_index(classifier, vectors)
    strengths = [float(s) for s in strengths]
    at = 1.0 if 1.0 in strengths else max(strengths, default=None)
    z0 = sample_z(n, generator.z_dim if hasattr(generator, "z_dim") else hparams.Z_DIM, seed)
    before = label_faces(generator, classifier, z0, batch_size)
    effects = []
    for tv in vectors:
        k = index[tv.name]
        shifted, changes = {}, {}
        for s in strengths:
            after = label_faces(generator, classifier, compose(z0, 1.0, [s], tv.v[None]), batch_size)
            shifted[s] = float(after[:, k].mean())
            if s == at:
                delta = numpy.abs(after - before).mean(0)
                changes = {t: float(delta[j]) for j, t in enumerate(classifier.tags) if j != k}
        effects.append(TagEffect(tv.name, float(before[:, k].mean()), shifted, changes, at))
    return effects


def drop_side_effects(vectors, effects, limit):
    """The vectors (and their effects) whose :attr:`TagEffect.side_effect` is at most ``limit``.

    Returns:
        ``(vectors, effects, dropped)``: the kept ones in order, and ``[(name, (other tag, change)), ...]``
        for each dropped one.
    """
    if [tv.name for tv in vectors] != [e.name for e in effects]:
        raise ValueError("vectors and effects do not match")
    keep = [e.side_effect[1] <= limit for e in effects]
    dropped = [(e.name, e.side_effect) for e, k in zip(effects, keep) if not k]
    return ([tv for tv, k in zip(vectors, keep) if k], [e for e, k in zip(effects, keep) if k], dropped)


def clean_sliders(effects, low=0.3, high=0.8, limit=0.1):
    """The names of the effects that pass :meth:`TagEffect.clean`, in order."""
    return [e.name for e in effects if e.clean(low, high, limit)]


def format_effect_table(effects, accuracy=None):
    """A plain-text table of :func:`measure_effect`'s result, one tag a line, and summary lines.

    Columns: the tag's mean probability at ``z0`` and at each strength, whether it rises, the mean
    off-target change at the strength of the changes (``off@s``) and the other tag it moves most.
    ``accuracy`` (dict tag -> float), e.g. the classifier's held-out balanced accuracy per tag, adds
    a column saying how well each tag can be read at all.
    """
    if not effects:
        return "no tag vectors to measure\n"
    strengths = sorted(effects[0].shifted)
    width = max(12, max(len(e.name) for e in effects))
    at = effects[0].at
    head = "{:<{w}}  {:>7}".format("tag", "z0", w=width) + "".join(
        "  {:>9}".format("+{:g}*v".format(s)) for s in strengths) + "  rises"
    if at is not None:
        head += "  {:>7}  {}".format("off@{:g}".format(at), "moves most")
    if accuracy is not None:
        head += "  clf acc"
    lines = [head, "-" * len(head)]
    for e in effects:
        line = "{:<{w}}  {:7.3f}".format(e.name, e.base, w=width) + "".join(
            "  {:9.3f}".format(e.shifted[s]) for s in strengths) + "  {:>5}".format("yes" if e.rises else "no")
        if at is not None:
            worst, change = e.side_effect
            most = "{} {:.2f}".format(worst, change) if worst is not None else "-"
            line += "  {:7.3f}  {:<{w}}".format(e.off_target, most, w=width + 6)
        if accuracy is not None:
            line += "  {:7.3f}".format(accuracy[e.name]) if e.name in accuracy else "  {:>7}".format("-")
        lines.append(line.rstrip())
    lines.append("{} of {} tags rise with s".format(sum(e.rises for e in effects), len(effects)))
    if at is not None:
        lines.append("mean off-target change at s = {:g}: {:.3f}; clean sliders (below 0.3 to above 0.8, "
                     "off-target below 0.1): {} of {}".format(
                         at, float(numpy.mean([e.off_target for e in effects])),
                         len(clean_sliders(effects)), len(effects)))
    return "\n".join(lines) + "\n"


def write_tag_vectors(path, vectors, effects=None, meta=None):
    """Write the demo's JSON atomically: ``{"tags": [{"name", "v", "count"[, "effect"]}], "z_dim": D, ...}``.

    ``v`` holds D floats rounded to 6 decimals. With ``effects`` (from :func:`measure_effect`), each
    tag also gets ``"effect": {"base": p, "shifted": {"0.5": p, "1": p}}``. ``meta`` (dict) adds
    top-level keys (e.g. how the vectors were made).
    """
    effects = {e.name: e for e in effects or []}
    z_dims = {len(tv.v) for tv in vectors}
    if len(z_dims) > 1:
        raise ValueError("vectors: mixed dimensions {}".format(sorted(z_dims)))
    doc = {"format": FORMAT_VERSION, "z_dim": z_dims.pop() if z_dims else hparams.Z_DIM}
    doc.update(meta or {})
    doc["tags"] = []
    for tv in vectors:
        entry = dict(tv.extra)
        entry.update({"name": tv.name, "v": [round(float(x), 6) for x in tv.v], "count": int(tv.count)})
        if tv.name in effects:
            e = effects[tv.name]
            entry["effect"] = {"base": round(e.base, 6),
                               "shifted": {"{:g}".format(s): round(p, 6) for s, p in sorted(e.shifted.items())}}
            if e.at is not None:
                entry["effect"]["off_target"] = round(e.off_target, 6)
                entry["effect"]["at"] = e.at
        doc["tags"].append(entry)
    with atomic_write(path, "w") as f:
        json.dump(doc, f, indent=1)
        f.write("\n")


def read_tag_vectors(path, z_dim=None):
    """A list of :class:`TagVector` (``v`` as ``float64 (D,)``) from a tag-vector JSON file, or from the
    shipped model of that name (``"default"``: its tag vectors).

    ``v`` is kept in float64, the values a browser reads from the same file, so
    :func:`~chainer_dcgan.zspace.compose` gives the page's z exactly.

    Raises:
        TagVectorFileError: the file is missing, not JSON, or a field is malformed (named), or
            ``z_dim`` is given and a vector has another length.
    """
    path = _shipped(path, pretrained.TAGS, TagVectorFileError)
    try:
        with open(path, encoding="utf-8") as f:
            doc = jsonio.load(f)
    except FileNotFoundError:
        raise TagVectorFileError("{}: no such tag-vector file (shipped models, by name: {})".format(
            path, ", ".join(pretrained.names()) or "none")) from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as e:
        raise TagVectorFileError("{}: not a JSON file: {}".format(path, e)) from None
    if not isinstance(doc, dict) or not isinstance(doc.get("tags"), list):
        raise TagVectorFileError("{}: expected an object with a list 'tags'".format(path))
    result = []
    for i, entry in enumerate(doc["tags"]):
        where = "{}: tags[{}]".format(path, i)
        if not isinstance(entry, dict):
            raise TagVectorFileError("{}: expected an object".format(where))
        name, v, count = entry.get("name"), entry.get("v"), entry.get("count", 0)
        if not isinstance(name, str) or not name:
            raise TagVectorFileError("{}: field 'name' must be a non-empty string".format(where))
        if (not isinstance(v, list) or not v
                or not all(isinstance(x, (int, float)) and not isinstance(x, bool) and math.isfinite(x) for x in v)):
            raise TagVectorFileError("{} ({}): field 'v' must be a non-empty list of finite numbers".format(
                where, name))
        if z_dim is not None and len(v) != z_dim:
            raise TagVectorFileError("{} ({}): field 'v' has {} numbers, the model's z has {}".format(
                where, name, len(v), z_dim))
        if not isinstance(count, int) or isinstance(count, bool) or count < 0:
            raise TagVectorFileError("{} ({}): field 'count' must be a non-negative integer".format(where, name))
        extra = {k: val for k, val in entry.items() if k not in ("name", "v", "count")}
        result.append(TagVector(name, numpy.asarray(v, dtype=numpy.float64), count, extra))
    if len({len(tv.v) for tv in result}) > 1:
        raise TagVectorFileError("{}: the vectors differ in length".format(path))
    return result


def stack_vectors(vectors):
    """``(names, V)``: the tag names and their vectors as one ``float64 (K, D)`` matrix for :func:`compose`."""
    if not vectors:
        return [], numpy.zeros((0, hparams.Z_DIM))
    return [tv.name for tv in vectors], numpy.stack([numpy.asarray(tv.v, dtype=numpy.float64) for tv in vectors])
