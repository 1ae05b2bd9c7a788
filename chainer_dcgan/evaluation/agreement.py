"""Does a conditional generator give the tags it is asked for? Agreement, read by the tag classifier.

:func:`conditional_agreement` draws tag sets from the data's own rows, generates a face for each with a
fresh z, and lets a :class:`~chainer_dcgan.zspace.tagging.TagClassifier` label it. For each tag:

* ``p_on``: P(classifier says the tag | y_tag = 1), the share of faces asked for it that show it;
* ``p_off``: P(classifier says the tag | y_tag = 0);
* ``balanced = (p_on + 1 - p_off) / 2``, the balanced accuracy of the classifier's labels against y
  (0.5 is chance: a generator that ignores y scores about that);
* ``auc``: the probability that a face asked for the tag gets a higher classifier probability for
  it than a face not asked for it (ROC AUC; chance 0.5). It needs no threshold, so it reads the
  conditioning of a model too young to draw faces the classifier would call tagged.

``shuffle=True`` is the control: faces are made from the tag sets in a random order but scored against
the unshuffled ones, so whatever is left above 0.5 is not the conditioning's doing.

:func:`steering_share` measures the other way to steer, tag vectors added to z of an unconditional
model, on the same scale: the share of faces that show the tag after ``z0 + s * v``.
"""
import dataclasses

import numpy

from chainer_dcgan.datasets.tagged import tag_matrix
from chainer_dcgan.models import sample_z
from chainer_dcgan.zspace import compose, generate
from chainer_dcgan.zspace.tagging import evaluate_classifier


@dataclasses.dataclass
class TagAgreement:
    """How one tag of a conditional generator is obeyed.

    Attributes:
        name (str): the tag.
        p_on (float): share of faces asked for the tag that the classifier says have it.
        p_off (float): share of faces not asked for it that the classifier says have it.
        n_on, n_off (int): how many faces were asked for it / not.
        auc (float): ROC AUC of the classifier's probability of the tag against y (chance 0.5).
    """
    name: str
    p_on: float
    p_off: float
    n_on: int
    n_off: int
    auc: float = float("nan")

    @property
    def balanced(self):
        """``(p_on + 1 - p_off) / 2``: the balanced accuracy of the labels against y (chance 0.5)."""
        return (self.p_on + 1.0 - self.p_off) / 2.0


def check_sizes(generator, classifier):
    """Raise ValueError unless ``classifier`` reads faces of the size ``generator`` draws."""
    if classifier.image_size != generator.size:
        raise ValueError("the tag classifier reads {0}x{0} faces but the generator draws {1}x{1}: train a "
                         "classifier at {1} px".format(classifier.image_size, generator.size))


def conditional_agreement(generator, classifier, tag_sets, n=500, seed=0, threshold=0.5, shuffle=False,
                          batch_size=100):
    """Per-tag agreement of ``generator``'s faces with the tags asked of it (see the module).

    Args:
        generator (chainer_dcgan.models.ConditionalGenerator): the model (any device).
        classifier (TagClassifier): labels the faces; tags it does not know are left out.
        tag_sets: ``float (M, K)`` over ``generator.tags``: the tag sets to draw from (the
            training data's rows, e.g. :attr:`~chainer_dcgan.datasets.TaggedDataset.labels`).
        n (int): faces.
        seed (int): draws the tag sets, z and the control's order.
        threshold (float): the classifier says a tag when its probability is >= this.
        shuffle (bool): the control: generate from a permutation of the tag sets.
        batch_size (int): faces per forward pass.

    Returns:
        list of :class:`TagAgreement`, in ``generator.tags`` order, for the tags the classifier
        knows that were both asked for and not at least once.
    """
    check_sizes(generator, classifier)
    tag_sets = numpy.asarray(tag_sets, dtype=numpy.float32)
    if tag_sets.ndim != 2 or tag_sets.shape[1] != len(generator.tags) or not len(tag_sets):
        raise ValueError("tag_sets must have shape (M, {}) with M >= 1, got {}".format(
            len(generator.tags), tag_sets.shape))
    rs = numpy.random.RandomState(seed)
    y = tag_sets[rs.randint(0, len(tag_sets), size=n)]
    z = sample_z(n, generator.z_dim, rs)
    order = rs.permutation(n)
    faces = generate(generator, z, batch_size, y=y[order] if shuffle else y)
    probs = classifier.predict_proba(faces, batch_size)
    said = probs >= threshold
    index = {t: j for j, t in enumerate(classifier.tags)}
    result = []
    for k, name in enumerate(generator.tags):
        if name not in index:
            continue
        on = y[:, k] >= 0.5
        if on.all() or not on.any():
            continue
        pred = said[:, index[name]]
        result.append(TagAgreement(name, float(pred[on].mean()), float(pred[~on].mean()), int(on.sum()),
                                   int((~on).sum()), roc_auc(probs[on, index[name]], probs[~on, index[name]])))
    return result


def roc_auc(positive, negative):
    """P(a score of ``positive`` > one of ``negative``), ties counting half: the ROC AUC (float in [0, 1])."""
    positive, negative = numpy.asarray(positive, numpy.float64), numpy.asarray(negative, numpy.float64)
    if not len(positive) or not len(negative):
        return float("nan")
    scores = numpy.concatenate([positive, negative])
    order = numpy.argsort(scores, kind="mergesort")
    ranks = numpy.empty(len(scores))
    ranks[order] = numpy.arange(1, len(scores) + 1)
    for value in numpy.unique(scores):  # mid-ranks for ties
        tied = scores == value
        if tied.sum() > 1:
            ranks[tied] = ranks[tied].mean()
    u = ranks[:len(positive)].sum() - len(positive) * (len(positive) + 1) / 2.0
    return float(u / (len(positive) * len(negative)))


def mean_balanced(agreements):
    """Mean of :attr:`TagAgreement.balanced` over ``agreements`` (NaN when empty)."""
    return float(numpy.mean([a.balanced for a in agreements])) if agreements else float("nan")


def mean_auc(agreements):
    """Mean of :attr:`TagAgreement.auc` over ``agreements`` (NaN when empty)."""
    return float(numpy.mean([a.auc for a in agreements])) if agreements else float("nan")


def steering_share(generator, classifier, vectors, n=200, seed=1, strength=1.0, threshold=0.5, batch_size=100):
    """For each tag vector: the share of faces showing its tag before and after steering.

    Faces come from ``z0`` (``n``, seeded) and from ``compose(z0, 1, [strength], [v])`` =
    ``clip(z0 + strength * v, -1, 1)``, the demo's slider formula, of an unconditional generator.

    Returns:
        dict ``name -> (share at z0, share after steering)``, floats in [0, 1].
    """
    check_sizes(generator, classifier)
    index = {t: j for j, t in enumerate(classifier.tags)}
    z0 = sample_z(n, generator.z_dim, seed)
    base = classifier.predict_proba(generate(generator, z0, batch_size), batch_size) >= threshold
    result = {}
    for tv in vectors:
        if tv.name not in index:
            continue
        j = index[tv.name]
        z = compose(z0, 1.0, [strength], numpy.asarray(tv.v, dtype=numpy.float64)[None])
        after = classifier.predict_proba(generate(generator, z, batch_size), batch_size)[:, j] >= threshold
        result[tv.name] = (float(base[:, j].mean()), float(after.mean()))
    return result


def classifier_accuracy(classifier, dataset, n=500, seed=0):
    """The classifier's own balanced accuracy per tag on ``n`` real images of a tagged ``dataset``.

    Args:
        dataset: a dataset with ``tags(i)`` whose examples are ``float32 (3, S, S)`` arrays, S the
            classifier's ``image_size``.
        n (int): images (all when the dataset is smaller), picked with ``seed``.

    Returns:
        dict ``tag -> balanced accuracy`` (chance 0.5) for the classifier's tags found in the sample
        both present and absent.
    """
    index = numpy.random.RandomState(seed).permutation(len(dataset))[:n]
    images = numpy.stack([dataset[int(i)] for i in index])
    labels = tag_matrix([list(dataset.tags(int(i))) for i in index], classifier.tags).astype(numpy.int32)
    balanced = evaluate_classifier(classifier, images, labels)["balanced"]
    varies = (labels.min(0) == 0) & (labels.max(0) == 1)
    return {t: float(b) for t, b, v in zip(classifier.tags, balanced, varies) if v}


def format_agreement_table(agreements, control=None, accuracy=None):
    """A plain-text table, one tag a line, and a summary line with the means and chance (0.5).

    Args:
        agreements (list of TagAgreement): the measurement.
        control (list of TagAgreement or None): the y-shuffled control, shown beside it.
        accuracy (dict or None): tag -> the classifier's own balanced accuracy on real images.
    """
    if not agreements:
        return "no tag to measure (none both asked for and not, or the classifier knows none)\n"
    control = {a.name: a for a in control or []}
    width = max(12, max(len(a.name) for a in agreements))
    head = "{:<{w}}  {:>5}  {:>7}  {:>7}  {:>8}  {:>5}".format("tag", "n_on", "P(on|1)", "P(on|0)", "balanced",
                                                               "auc", w=width)
    if control:
        head += "  {:>8}  {:>8}".format("shuf bal", "shuf auc")
    if accuracy is not None:
        head += "  {:>7}".format("clf acc")
    lines = [head, "-" * len(head)]
    for a in agreements:
        line = "{:<{w}}  {:5d}  {:7.3f}  {:7.3f}  {:8.3f}  {:5.3f}".format(
            a.name, a.n_on, a.p_on, a.p_off, a.balanced, a.auc, w=width)
        if control:
            c = control.get(a.name)
            line += "  {:8.3f}  {:8.3f}".format(c.balanced, c.auc) if c else "  {:>8}  {:>8}".format("-", "-")
        if accuracy is not None:
            line += "  {:7.3f}".format(accuracy[a.name]) if a.name in accuracy else "  {:>7}".format("-")
        lines.append(line)
    summary = "mean balanced accuracy {:.3f}, mean AUC {:.3f} over {} tags (chance 0.5 each)".format(
        mean_balanced(agreements), mean_auc(agreements), len(agreements))
    if control:
        summary += "; y-shuffled control {:.3f}, AUC {:.3f}".format(mean_balanced(list(control.values())),
                                                                    mean_auc(list(control.values())))
    if accuracy:
        summary += "; classifier on real images {:.3f}".format(
            float(numpy.mean([accuracy[a.name] for a in agreements if a.name in accuracy])))
    lines.append(summary)
    return "\n".join(lines) + "\n"


__all__ = ["TagAgreement", "conditional_agreement", "classifier_accuracy", "mean_balanced", "mean_auc", "roc_auc", "steering_share",
           "format_agreement_table"]
