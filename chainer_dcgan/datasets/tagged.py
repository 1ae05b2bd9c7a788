"""Images with their tags as multi-hot vectors, for conditional training.

:class:`TaggedDataset` wraps any dataset whose ``tags(i)`` gives example ``i``'s tag names (the
embedded :class:`~chainer_dcgan.datasets.SyntheticFaces`, or an
:class:`~chainer_dcgan.datasets.ImageDataset` with a manifest) and yields ``(x, y)`` pairs over a
chosen vocabulary; :func:`choose_tags` picks that vocabulary.
"""
import collections

import chainer
import numpy

from chainer_dcgan.utils import parameter_error


class TagVocabularyError(ValueError):
    """A vocabulary that cannot be used with a dataset (unknown tag, none frequent enough, no tags at all)."""


def dataset_tags(dataset):
    """Every example's tag names: a list (one list of str per example) read through ``dataset.tags(i)``.

    Raises:
        TagVocabularyError: the dataset has no ``tags`` (e.g. a folder without a manifest).
    """
    if not callable(getattr(dataset, "tags", None)):
        raise TagVocabularyError("the dataset has no tags (a folder needs a manifest.jsonl with tags)")
    return [list(dataset.tags(i)) for i in range(len(dataset))]


def choose_tags(tag_lists, tags=None, min_count=None):
    """The vocabulary: ``tags`` checked against the data, or every tag on at least ``min_count`` examples.

    The one place a vocabulary is chosen from data: conditional training (:class:`TaggedDataset`) and the
    tag classifier (:func:`chainer_dcgan.zspace.tagging.load_tagged_faces`) both use it.

    Args:
        tag_lists (list of list of str): each example's tags (see :func:`dataset_tags`).
        tags (list of str or None): the names wanted, in order; each must occur in the data.
        min_count (int or None): with ``tags`` None, keep tags on at least this many examples and
            missing from as many (sorted by name); None means 1.

    Raises:
        TagVocabularyError: about ``tags`` or ``min_count`` (:func:`~chainer_dcgan.utils.parameter_error`):
            no tag wanted, a wanted tag given twice or never occurring, or no tag frequent enough.
    """
    counts = collections.Counter(t for ts in tag_lists for t in set(ts))
    if tags is not None:
        tags = list(tags)
        if not tags:
            raise parameter_error(TagVocabularyError, "tags", ": no tag names given")
        missing = [t for t in tags if t not in counts]
        if missing:
            raise parameter_error(TagVocabularyError, "tags", ": {} not on any training image (the data's tags: {})"
                                  .format(", ".join(missing), ", ".join(sorted(counts)) or "none"))
        if len(set(tags)) != len(tags):
            raise parameter_error(TagVocabularyError, "tags", ": a tag is given twice: {}".format(",".join(tags)))
        return tags
    low = 1 if min_count is None else min_count
    chosen = sorted(t for t, c in counts.items() if c >= low and len(tag_lists) - c >= low)
    if not chosen:
        raise parameter_error(TagVocabularyError, "min_count", " {}: no tag is on at least {} and missing from at "
                              "least {} of the {} images".format(low, low, low, len(tag_lists)))
    return chosen


def tag_matrix(tag_lists, tags):
    """``float32 (N, K)`` multi-hot rows: entry ``(i, k)`` is 1 when example ``i`` has ``tags[k]``."""
    index = {t: k for k, t in enumerate(tags)}
    y = numpy.zeros((len(tag_lists), len(tags)), dtype=numpy.float32)
    for i, ts in enumerate(tag_lists):
        for t in ts:
            if t in index:
                y[i, index[t]] = 1.0
    return y


class TaggedDataset(chainer.dataset.DatasetMixin):
    """``(x, y)`` pairs: ``x`` the base dataset's ``float32 (3, H, W)`` example, ``y`` ``float32 (K,)``.

    Args:
        base: a dataset with ``tags(i)``.
        tags (list of str or None): the vocabulary; None chooses it with ``min_count``.
        min_count (int or None): see :func:`choose_tags`.

    Attributes:
        tags (list of str): the K names, in y's order.
        labels: ``float32 (N, K)``, every example's y (the tag sets fakes are conditioned on).
    """

    def __init__(self, base, tags=None, min_count=None):
        self.base = base
        tag_lists = dataset_tags(base)
        self.tags = choose_tags(tag_lists, tags, min_count)
        self.labels = tag_matrix(tag_lists, self.tags)

    def __len__(self):
        return len(self.base)

    def get_example(self, i):
        return self.base[i], self.labels[i]


__all__ = ["TaggedDataset", "TagVocabularyError", "choose_tags", "dataset_tags", "tag_matrix"]
