"""Sample-quality metrics from InceptionV3 pool3 features: FID, KID, precision/recall, density/coverage.

All functions take features as NumPy ``float (N, 2048)`` arrays (:class:`~chainer_dcgan.evaluation.inception.
FeatureExtractor`), so one extraction serves every metric. Dataset features are cached as ``.npz``
files keyed by the dataset's content, the sample count and the extractor
(:func:`dataset_features`), because extracting 10,000 real images is the slow part on a CPU.

* FID (Heusel et al. 2017): Fréchet distance between Gaussians fitted to the two sets. Biased
  by the sample count: compare numbers computed with the same ``n`` only.
* KID (Bińkowski et al. 2018): unbiased estimate of the squared MMD with the cubic polynomial kernel
  ``k(x, y) = (x.y / d + 1) ** 3``, over all pairs, with a two-sample jackknife standard error.
  Unbiased, so it can be slightly negative when the sets come from the same distribution.
* Precision/recall (Kynkäänniemi et al. 2019, k=3) and density/coverage (Naeem et al. 2020, k=5):
  k-nearest-neighbour manifolds of each set in feature space.

:func:`held_out` gives a second real sample for the real-vs-real floor at the same ``n``;
:class:`Degraded` blurs or noises it, to read a generator's score against defects of known size.
"""
import hashlib
import json
import os

import chainer
import numpy

from chainer_dcgan.datasets.images import ImageDataset
from chainer_dcgan.models import generate, sample_z
from chainer_dcgan.models.serialization import SafeNpz
from chainer_dcgan.utils import jsonio
from chainer_dcgan.utils.atomic import write_npz
from chainer_dcgan.utils.cache import cache_dir

#: Rows per block in the pairwise computations (memory: block * N * 8 bytes per matrix).
_BLOCK = 1024
#: Changes whenever features of the same images would change (preprocessing, weights).
FEATURE_VERSION = "inception-default_1-nvbilinear299-tf-v1"


def statistics(features):
    """Mean ``float64 (d,)`` and covariance ``float64 (d, d)`` (``ddof=1``) of ``float (N, d)`` features."""
    f = numpy.asarray(features, dtype=numpy.float64)
    if f.ndim != 2 or len(f) < 2:
        raise ValueError("statistics need at least 2 feature vectors of shape (N, d), got {}".format(f.shape))
    return f.mean(axis=0), numpy.cov(f, rowvar=False)


def _clip_eigenvalues(values):
    """Zero eigenvalues that are rounding noise (below ``max * d * eps``), which ``sqrt`` would
    otherwise amplify when a covariance is singular (fewer samples than dimensions)."""
    floor = max(values.max(initial=0.0), 0.0) * len(values) * numpy.finfo(numpy.float64).eps
    return numpy.where(values > floor, values, 0.0)


def _sqrt_psd(matrix):
    values, vectors = numpy.linalg.eigh((matrix + matrix.T) / 2)
    return (vectors * numpy.sqrt(_clip_eigenvalues(values))) @ vectors.T


def frechet_distance(mu1, sigma1, mu2, sigma2):
    """``|mu1 - mu2|^2 + tr(S1 + S2 - 2 (S1 S2)^(1/2))`` for two Gaussians.

    ``tr (S1 S2)^(1/2)`` is computed as the sum of square roots of the eigenvalues of the symmetric
    PSD matrix ``S1^(1/2) S2 S1^(1/2)`` (same eigenvalues as ``S1 S2``), which stays real and
    stable when the covariances are singular (fewer samples than dimensions), unlike ``sqrtm``.

    Returns:
        float, >= 0 up to rounding.
    """
    mu1, mu2 = numpy.asarray(mu1, numpy.float64), numpy.asarray(mu2, numpy.float64)
    sigma1, sigma2 = numpy.asarray(sigma1, numpy.float64), numpy.asarray(sigma2, numpy.float64)
    if mu1.shape != mu2.shape or sigma1.shape != sigma2.shape or sigma1.shape != mu1.shape * 2:
        raise ValueError("mismatched statistics: mu {} / {}, sigma {} / {}".format(
            mu1.shape, mu2.shape, sigma1.shape, sigma2.shape))
    root1 = _sqrt_psd(sigma1)
    middle = root1 @ sigma2 @ root1
    eig = numpy.linalg.eigvalsh((middle + middle.T) / 2)
    trace_sqrt = numpy.sqrt(_clip_eigenvalues(eig)).sum()
    diff = mu1 - mu2
    return float(diff @ diff + numpy.trace(sigma1) + numpy.trace(sigma2) - 2.0 * trace_sqrt)


def fid(features1, features2):
    """FID between two feature sets ``float (N1, d)`` and ``float (N2, d)``.

    With few vectors (``N1 * N2 * min(N1, N2) <= d^3``, e.g. 1,000 against 1,000 in 2,048
    dimensions) it avoids the ``d x d`` eigen-decompositions: with centred, scaled features
    ``A`` and ``B`` (``S1 = A^T A``), ``tr (S1 S2)^(1/2)`` is the sum of the singular values of
    ``A B^T``, an ``N1 x N2`` matrix. Otherwise it is :func:`frechet_distance` of the statistics.
    """
    x1 = numpy.asarray(features1, dtype=numpy.float64)
    x2 = numpy.asarray(features2, dtype=numpy.float64)
    if x1.ndim != 2 or x2.ndim != 2 or x1.shape[1] != x2.shape[1] or min(len(x1), len(x2)) < 2:
        raise ValueError("fid needs two (N, d) feature sets with N >= 2, got {} and {}".format(
            x1.shape, x2.shape))
    n1, n2, d = len(x1), len(x2), x1.shape[1]
    if n1 * n2 * min(n1, n2) > d ** 3:
        return frechet_distance(*statistics(x1), *statistics(x2))
    mu1, mu2 = x1.mean(axis=0), x2.mean(axis=0)
    a = (x1 - mu1) / numpy.sqrt(n1 - 1)
    b = (x2 - mu2) / numpy.sqrt(n2 - 1)
    trace_sqrt = numpy.linalg.svd(a @ b.T, compute_uv=False).sum()
    diff = mu1 - mu2
    return float(diff @ diff + (a * a).sum() + (b * b).sum() - 2.0 * trace_sqrt)


def _kernel_sums(a, b, same):
    """Row sums of ``k(a, b)`` (diagonal left out when ``same``) for the cubic polynomial kernel."""
    d = a.shape[1]
    a32, b32 = a.astype(numpy.float32), b.astype(numpy.float32)
    sums = numpy.empty(len(a), dtype=numpy.float64)
    for i in range(0, len(a), _BLOCK):
        k = (a32[i:i + _BLOCK] @ b32.T).astype(numpy.float64) / d + 1.0
        k = k * k * k
        if same:
            rows = numpy.arange(i, min(i + _BLOCK, len(a)))
            k[rows - i, rows] = 0.0
        sums[i:i + _BLOCK] = k.sum(axis=1)
    return sums


def kid(features1, features2):
    """Kernel Inception Distance: the unbiased MMD^2 estimate over all pairs, and its standard error.

    Args:
        features1, features2: ``float (m, d)`` and ``float (n, d)``, m, n >= 3.

    Returns:
        ``(kid, stderr)``: floats. ``stderr`` is the two-sample jackknife estimate (leave one
        vector out of either set), computed exactly from kernel row sums.
    """
    x = numpy.asarray(features1, dtype=numpy.float64)
    y = numpy.asarray(features2, dtype=numpy.float64)
    m, n = len(x), len(y)
    if m < 3 or n < 3 or x.ndim != 2 or x.shape[1:] != y.shape[1:]:
        raise ValueError("kid needs two (N, d) feature sets with N >= 3, got {} and {}".format(
            x.shape, y.shape))
    rx = _kernel_sums(x, x, True)   # sum_{j != i} k(x_i, x_j)
    ry = _kernel_sums(y, y, True)
    cx = _kernel_sums(x, y, False)  # sum_j k(x_i, y_j)
    cy = _kernel_sums(y, x, False)
    sx, sy, sxy = rx.sum(), ry.sum(), cx.sum()
    value = sx / (m * (m - 1)) + sy / (n * (n - 1)) - 2.0 * sxy / (m * n)
    # Leave x_i out: its row and column leave the x-x sum, its row leaves the x-y sum.
    loo_x = (sx - 2 * rx) / ((m - 1) * (m - 2)) + sy / (n * (n - 1)) - 2.0 * (sxy - cx) / ((m - 1) * n)
    loo_y = sx / (m * (m - 1)) + (sy - 2 * ry) / ((n - 1) * (n - 2)) - 2.0 * (sxy - cy) / (m * (n - 1))
    variance = ((m - 1) / m * ((loo_x - loo_x.mean()) ** 2).sum()
                + (n - 1) / n * ((loo_y - loo_y.mean()) ** 2).sum())
    return float(value), float(numpy.sqrt(variance))


def _squared_norms(a):
    return numpy.einsum("ij,ij->i", a, a, dtype=numpy.float64)


def _distances(a, b, norms_a, norms_b):
    """Euclidean distances ``float64 (len(a), len(b))`` through one float32 GEMM."""
    d2 = norms_a[:, None] + norms_b[None, :] - 2.0 * (a @ b.T).astype(numpy.float64)
    return numpy.sqrt(numpy.clip(d2, 0, None))


def _knn_radii(a, norms, ks):
    """Distance from each row of ``a`` to its k-th nearest other row, for each k in ``ks``."""
    if len(a) <= max(ks):
        raise ValueError("k-NN radii with k={} need more than {} feature vectors, got {}".format(
            max(ks), max(ks), len(a)))
    radii = numpy.empty((len(ks), len(a)), dtype=numpy.float64)
    for i in range(0, len(a), _BLOCK):
        d = _distances(a[i:i + _BLOCK], a, norms[i:i + _BLOCK], norms)
        rows = numpy.arange(i, min(i + _BLOCK, len(a)))
        d[rows - i, rows] = 0.0  # itself, sorted first
        part = numpy.partition(d, list(ks), axis=1)
        for j, k in enumerate(ks):
            radii[j, i:i + _BLOCK] = part[:, k]
    return radii


def nearest_neighbour_metrics(real, fake, k_pr=3, k_dc=5):
    """Precision and recall (k-NN balls of radius to the ``k_pr``-th neighbour), density and
    coverage (``k_dc``-th neighbour, real balls only).

    Args:
        real, fake: ``float (N, d)`` and ``float (M, d)`` features.

    Returns:
        dict with ``precision``, ``recall``, ``coverage`` in [0, 1] and ``density`` (>= 0, about
        1 when the sets match).
    """
    real = numpy.asarray(real, dtype=numpy.float32)
    fake = numpy.asarray(fake, dtype=numpy.float32)
    nr, nf = _squared_norms(real), _squared_norms(fake)
    r_pr, r_dc = _knn_radii(real, nr, (k_pr, k_dc))
    f_pr = _knn_radii(fake, nf, (k_pr,))[0]
    in_real = numpy.zeros(len(fake), dtype=bool)      # fake j inside some real k_pr ball
    covered_by_fake = numpy.zeros(len(real), dtype=bool)  # real i inside some fake k_pr ball
    density_count = 0
    nearest_fake = numpy.full(len(real), numpy.inf)
    for j in range(0, len(fake), _BLOCK):
        d = _distances(fake[j:j + _BLOCK], real, nf[j:j + _BLOCK], nr)  # (block, N)
        in_real[j:j + _BLOCK] = (d <= r_pr[None, :]).any(axis=1)
        covered_by_fake |= (d <= f_pr[j:j + _BLOCK, None]).any(axis=0)
        density_count += int((d <= r_dc[None, :]).sum())
        nearest_fake = numpy.minimum(nearest_fake, d.min(axis=0))
    return {
        "precision": float(in_real.mean()),
        "recall": float(covered_by_fake.mean()),
        "density": density_count / float(k_dc * len(fake)),
        "coverage": float((nearest_fake < r_dc).mean()),
    }


def evaluate(real, fake, real_statistics=None):
    """Every metric between real and generated features.

    Args:
        real, fake: ``float (N, 2048)`` and ``float (M, 2048)`` features.
        real_statistics: ``(mu, sigma)`` of ``real`` if already known (saves a covariance).

    Returns:
        dict: ``fid``, ``kid``, ``kid_stderr``, ``precision``, ``recall``, ``density``,
        ``coverage``, ``n_real``, ``n_fake``.
    """
    many = len(real) * len(fake) * min(len(real), len(fake)) > numpy.shape(real)[1] ** 3
    if real_statistics is not None and many:
        result = {"fid": frechet_distance(*real_statistics, *statistics(fake))}
    else:
        result = {"fid": fid(real, fake)}
    result["kid"], result["kid_stderr"] = kid(real, fake)
    result.update(nearest_neighbour_metrics(real, fake))
    result["n_real"], result["n_fake"] = len(real), len(fake)
    return result


# ----------------------------------------------------------------------------------------------
# Features of datasets (cached) and of generators


def select_examples(size, n, seed=0):
    """Indices of the ``n`` examples evaluated out of ``size``: all of them in order when
    ``n >= size``, else a sorted seeded sample without replacement."""
    if n is None or n >= size:
        return numpy.arange(size)
    if n < 1:
        raise ValueError("sample count must be >= 1, got {}".format(n))
    return numpy.sort(numpy.random.RandomState(seed).choice(size, n, replace=False))


def held_out(dataset, n, seed=0):
    """The examples of ``dataset`` that :func:`dataset_features` with the same ``n`` and ``seed`` does
    not select: a disjoint real sample, for the real-vs-real baseline of FID/KID at a sample count.

    Raises:
        ValueError: fewer than ``n`` examples are left.
    """
    chosen = select_examples(len(dataset), n, seed)
    rest = numpy.setdiff1d(numpy.arange(len(dataset)), chosen)
    if len(rest) < n:
        raise ValueError("a real-vs-real baseline of n={} needs {} examples; the dataset has {}".format(
            n, 2 * n, len(dataset)))
    return _Subset(dataset, rest, name="{}-heldout".format(_dataset_name(dataset)))


#: What :class:`Degraded` can do to a real face, and the unit of its amount.
DEGRADATIONS = {"blur": "Gaussian blur, sigma in pixels",
                "noise": "Gaussian pixel noise, sigma on the (pixel-128)/128 scale"}


def parse_degradation(text):
    """``"blur:1.0"`` or ``"noise:0.05"`` -> ``(kind, amount)``; ValueError names what is wrong."""
    kind, sep, amount = str(text).partition(":")
    if kind not in DEGRADATIONS or not sep:
        raise ValueError("expected blur:SIGMA or noise:SIGMA, got {!r}".format(text))
    try:
        value = float(amount)
    except ValueError:
        value = float("nan")
    if not numpy.isfinite(value) or value <= 0 or value > 100:
        raise ValueError("{}: the amount must be a number in (0, 100], got {!r}".format(kind, amount))
    return kind, value


class Degraded:
    """The examples of ``dataset``, each blurred or noised: what a defect of a known size costs.

    With :func:`held_out` it turns the real-vs-real baseline into a ruler: the FID of real faces
    blurred by one pixel, say, tells how close to the floor a generator can come while drawing
    softer edges than its data (``tools/evaluate.py --real-baseline --degrade blur:1``). The
    noise of example ``i`` is drawn from ``RandomState([seed, i])``, so it does not depend on the
    order the examples are read in. Values are clipped to ``[-1, 1]``.

    Args:
        dataset: a sequence of ``float32 (3, H, W)`` arrays, ``(pixel - 128) / 128``.
        kind (str): a key of :data:`DEGRADATIONS`.
        amount (float): the blur's or the noise's sigma (> 0).
        seed (int): the noise's seed.
    """

    def __init__(self, dataset, kind, amount, seed=0):
        if kind not in DEGRADATIONS:
            raise ValueError("unknown degradation {!r}; known: {}".format(kind, ", ".join(sorted(DEGRADATIONS))))
        if not amount > 0:
            raise ValueError("the amount must be > 0, got {}".format(amount))
        self.dataset, self.kind, self.amount, self.seed = dataset, kind, float(amount), int(seed)
        self.name = "{}-{}{:g}".format(_dataset_name(dataset), kind, self.amount)

    def __len__(self):
        return len(self.dataset)

    def __getitem__(self, i):
        x = numpy.asarray(self.dataset[i], dtype=numpy.float32)
        if self.kind == "blur":
            import cv2

            image = cv2.GaussianBlur(numpy.ascontiguousarray(x.transpose(1, 2, 0)), (0, 0), self.amount,
                                     borderType=cv2.BORDER_REFLECT_101)
            x = image.reshape(x.shape[1], x.shape[2], -1).transpose(2, 0, 1)
        else:
            noise = numpy.random.RandomState([self.seed, int(i)]).normal(0, self.amount, x.shape)
            x = x + noise.astype(numpy.float32)
        return numpy.clip(x, -1, 1).astype(numpy.float32)


def _dataset_name(dataset):
    if isinstance(dataset, (_Subset, Degraded)) and dataset.name:
        return dataset.name
    root = getattr(dataset, "root", None)
    if root:
        return os.path.basename(os.path.normpath(root)) or "dataset"
    if hasattr(dataset, "seed"):
        return "{}-seed{}".format(type(dataset).__name__, dataset.seed)
    return type(dataset).__name__


def _fingerprint(dataset, indices, chunk=256):
    """SHA-256 of the selected examples' values: a cache key that changes whenever the data does."""
    digest = hashlib.sha256(FEATURE_VERSION.encode())
    digest.update(numpy.asarray(indices, dtype=numpy.int64).tobytes())
    for i in range(0, len(indices), chunk):
        for j in indices[i:i + chunk]:
            digest.update(numpy.ascontiguousarray(dataset[int(j)], dtype=numpy.float32).tobytes())
    return digest.hexdigest()


def stats_cache_dir():
    """``<cache>/fid_stats`` (see :func:`chainer_dcgan.utils.cache.cache_dir`)."""
    return cache_dir("fid_stats")


def dataset_features(dataset, extractor, n=None, seed=0, cache=True, cache_dir=None, progress=False):
    """Features of ``n`` examples of ``dataset``, read from or written to an ``.npz`` cache.

    The cache file, ``<cache_dir>/<name>-n<N>-<key>.npz``, holds ``features`` ``float32 (N, 2048)``,
    ``mu``, ``sigma`` (float64) and ``meta`` (JSON text). ``key`` hashes the selected examples'
    values, the indices and :data:`FEATURE_VERSION`, so edited data or a different sample count
    never reuses stale features (reading the examples to hash them is cheap next to extracting).
    Features of the weights' compact copy (``extractor.compact``) go to ``<name>-compact-n<N>-...``.

    Args:
        dataset: a folder path (images, optionally ``manifest.jsonl``: read as 96x96 arrays like
            the training data) or a sequence of ``float32 (3, H, W)`` arrays ``(pixel-128)/128``.
        extractor (FeatureExtractor): the network, on its device.
        n (int or None): examples to use (None: all); see :func:`select_examples`.
        seed (int): picks the examples when ``n`` < the dataset's size.
        cache (bool): use the cache.
        cache_dir (str or None): default :func:`stats_cache_dir`.
        progress (bool): progress bar while extracting.

    Returns:
        ``(features, path)``: ``float32 (N, 2048)`` and the cache file (None without a cache).
    """
    if isinstance(dataset, (str, os.PathLike)):
        dataset = ImageDataset(dataset)  # unreadable files are left out, not stood in for by neighbours
    indices = select_examples(len(dataset), n, seed)
    path = None
    if cache:
        variant = "-compact" if getattr(extractor, "compact", False) else ""  # the weights' float16 copy
        key = _fingerprint(dataset, indices) + variant
        path = os.path.join(cache_dir or stats_cache_dir(),
                            "{}{}-n{}-{}.npz".format(_dataset_name(dataset), variant, len(indices), key[:16]))
        loaded = _load_cached(path, key)
        if loaded is not None:
            return loaded, path
    view = _Subset(dataset, indices)
    features = extractor(view, progress=progress, desc="real features")
    if cache:
        mu, sigma = statistics(features) if len(features) > 1 else (features.mean(axis=0), None)
        meta = json.dumps({"key": key, "n": len(indices), "seed": seed, "name": _dataset_name(dataset),
                           "version": FEATURE_VERSION})
        write_npz(path, dict(features=features, mu=mu, sigma=sigma if sigma is not None else numpy.zeros(0),
                             meta=numpy.array(meta)))
    return features, path


def _load_cached(path, key):
    if not os.path.isfile(path):
        return None
    try:
        with SafeNpz(path) as npz:
            meta = jsonio.loads(str(npz["meta"]))
            if not isinstance(meta, dict) or meta.get("key") != key:
                return None
            return npz["features"].astype(numpy.float32)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None  # damaged (ModelFileError is a ValueError): recomputed and replaced


class _Subset:
    def __init__(self, dataset, indices, name=None):
        self.dataset, self.indices, self.name = dataset, indices, name

    def __len__(self):
        return len(self.indices)

    def __getitem__(self, i):
        return self.dataset[int(self.indices[i])]


def generated_batches(gen, n, batchsize=50, seed=0, tag_sets=None):
    """Yield ``n`` faces of ``gen`` in test mode, as arrays ``(b, 3, 96, 96)`` on ``gen``'s device.

    z comes from :func:`chainer_dcgan.models.sample_z` with ``seed``, so the same seed gives the
    same faces on CPU and GPU, and repeated evaluations during training see the same z.
    ``tag_sets`` (``float (M, K)``, the data's tag rows), for a conditional generator: each face's
    y is a row drawn from it with the same random source.
    """
    random_state = numpy.random.RandomState(seed)
    device = chainer.backend.get_device_from_array(next(gen.params()).array)
    if tag_sets is not None:
        tag_sets = numpy.asarray(tag_sets, numpy.float32)
    for i in range(0, n, batchsize):
        z = sample_z(min(batchsize, n - i), gen.z_dim, random_state)
        y = None
        if tag_sets is not None:
            y = tag_sets[random_state.randint(0, len(tag_sets), size=len(z))]
        yield device.send(generate(gen, z, len(z), y=y))  # the one way faces are drawn (test mode, no graph)


def generator_features(gen, extractor, n, seed=0, batchsize=None, progress=False, tag_sets=None):
    """Features of ``n`` generated faces (see :func:`generated_batches`): ``float32 (n, 2048)``."""
    batches = generated_batches(gen, n, batchsize or extractor.batchsize, seed, tag_sets)
    return extractor(batches, progress=progress, total=n, desc="generated features")
