"""Cheap image statistics that tell whether a generator has started to look like its data.

Used as a training metric (:class:`chainer_dcgan.training.extensions.StatisticsDistance`) and by tests
that check a short run learns. Far cruder than FID (:mod:`chainer_dcgan.evaluation.metrics`), but it needs
no network and takes milliseconds.
"""
import numpy

_COLOUR_BINS = numpy.linspace(-1.0, 1.0, 9)
_EDGE_BINS = numpy.array([0.0, 0.02, 0.05, 0.1, 0.2, 0.4, 0.8, numpy.inf])


PARTS = ("colour", "edges", "layout")


def image_statistics(arrays, parts=PARTS):
    """Summary statistics of a batch of image arrays.

    Args:
        arrays: ``float (N, 3, H, W)`` NumPy arrays, roughly in ``[-1, 1]``.
        parts: which of :data:`PARTS` to include: ``colour`` (per-channel mean, std and 8-bin
            value histograms), ``edges`` (a histogram of horizontal+vertical gradient
            magnitudes), ``layout`` (the mean image at 6x6 per channel).

    Returns:
        ``float64 (K,)``, the parts concatenated. Histograms are fractions, so every part lies on
        a comparable scale.
    """
    unknown = set(parts) - set(PARTS)
    if unknown:
        raise ValueError("parts: unknown {}; choose from {}".format(sorted(unknown), PARTS))
    x = numpy.clip(numpy.asarray(arrays, dtype=numpy.float64), -1.0, 1.0)
    n, c, h, w = x.shape
    out = []
    if "colour" in parts:
        out += [x.mean(axis=(0, 2, 3)), x.std(axis=(0, 2, 3))]
        for ch in range(c):
            hist, _ = numpy.histogram(x[:, ch], bins=_COLOUR_BINS)
            out.append(hist / hist.sum())
    if "edges" in parts:
        gray = x.mean(axis=1)
        grad = numpy.abs(numpy.diff(gray, axis=1))[:, :, :-1] + numpy.abs(numpy.diff(gray, axis=2))[:, :-1, :]
        hist, _ = numpy.histogram(grad, bins=_EDGE_BINS)
        out.append(hist / hist.sum())
    if "layout" in parts:
        k = 6
        layout = x[:, :, : h - h % k, : w - w % k].reshape(n, c, k, h // k, k, w // k).mean(axis=(0, 3, 5))
        out.append(layout.ravel() / 2.0)
    return numpy.concatenate(out)


def statistics_distance(fake, real, parts=PARTS):
    """Euclidean distance between :func:`image_statistics` of two batches (0 for identical sets).

    Args:
        fake, real: ``float (N, 3, H, W)`` arrays (NumPy); N may differ.
        parts: which statistics to compare (see :func:`image_statistics`).
    """
    return float(numpy.linalg.norm(image_statistics(fake, parts) - image_statistics(real, parts)))
