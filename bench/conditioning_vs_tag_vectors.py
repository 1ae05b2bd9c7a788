"""Steering by conditioning against steering by tag vectors, read by the same tag classifier.

Given a conditional generator and an unconditional one trained on the same data for the same number
of images, for every tag of the conditional model's vocabulary:

* conditioning: P(classifier says the tag | asked for it) and P(... | not asked), over faces made
  from tag sets drawn from the data's own (:func:`chainer_dcgan.evaluation.agreement.conditional_agreement`),
  beside the y-shuffled control;
* tag vectors: the vectors of the unconditional model (mean z with the tag minus without, labelled
  by the classifier, :func:`chainer_dcgan.zspace.tagging.tag_vectors`), and the share of faces showing the
  tag at z0 and at clip(z0 + s v, -1, 1) (:func:`chainer_dcgan.evaluation.agreement.steering_share`).

The classifier is trained here on held-out embedded faces (another seed than the training data, drawn at
the models' size) and
its balanced accuracy on further held-out faces is printed beside each tag. Prints a Markdown table.

Usage::

    python bench/conditioning_vs_tag_vectors.py --conditional result_c/gen_iter_N.npz \\
        --unconditional result_u/gen_iter_N.npz [--classifier-images 1500] [--n 300]
"""
import argparse
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

from chainer_dcgan.datasets import SyntheticFaces, TaggedDataset  # noqa: E402
from chainer_dcgan.evaluation import agreement  # noqa: E402
from chainer_dcgan.models.serialization import load_generator  # noqa: E402
from chainer_dcgan.zspace import tagging  # noqa: E402

import numpy  # noqa: E402,I100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--conditional", required=True, help="a ConditionalGenerator npz (train_faces.py --conditional)")
    p.add_argument("--unconditional", required=True, help="a faithful Generator npz trained on the same data")
    p.add_argument("--synthetic-size", type=int, default=5000, help="the training data's size (default 5000)")
    p.add_argument("--synthetic-seed", type=int, default=0, help="the training data's seed (default 0)")
    p.add_argument("--classifier-images", type=int, default=1500,
                   help="embedded faces (seed 101) the classifier trains on; a fifth more are held out (default 1500)")
    p.add_argument("--classifier", default=None, help="use this saved classifier instead of training one")
    p.add_argument("--save-classifier", default=None, help="save the trained classifier here")
    p.add_argument("--epochs", type=int, default=4, help="classifier epochs (default 4)")
    p.add_argument("--n", type=int, default=300, help="faces per measurement (default 300)")
    p.add_argument("--vector-samples", type=int, default=1000, help="labelled faces for the tag vectors (default 1000)")
    p.add_argument("--strength", type=float, default=1.0, help="tag-vector slider value s (default 1)")
    p.add_argument("--min-count", type=int, default=10,
                   help="a tag gets a vector when at least this many labelled faces have it and lack it (default 10)")
    return p.parse_args(argv)


def faces_and_labels(n, seed, tags, size):
    data = SyntheticFaces(n, seed=seed, size=size)
    images = numpy.stack([data.image(i) for i in range(n)])
    labels = numpy.array([[t in data.tags(i) for t in tags] for i in range(n)], dtype=numpy.int32)
    return images, labels


def main(argv=None):
    args = parse_args(argv)
    cgen, ugen = load_generator(args.conditional), load_generator(args.unconditional)
    tags, size = list(cgen.tags), cgen.size
    if ugen.size != size:
        print("error: --unconditional is {} px but --conditional is {} px".format(ugen.size, size), file=sys.stderr)
        return 2
    start = time.time()
    held_images, held_labels = faces_and_labels(max(args.classifier_images // 5, 50), 202, tags, size)
    if args.classifier:
        clf = tagging.load_classifier(args.classifier)
    else:
        images, labels = faces_and_labels(args.classifier_images, 101, tags, size)
        keep = [k for k in range(len(tags)) if 0 < labels[:, k].sum() < len(labels)]
        clf = tagging.train_tag_classifier(images, labels[:, keep], [tags[k] for k in keep], epochs=args.epochs, seed=0)
        if args.save_classifier:
            tagging.save_classifier(args.save_classifier, clf)
    index = [tags.index(t) for t in clf.tags]
    ev = tagging.evaluate_classifier(clf, held_images, held_labels[:, index])
    accuracy = dict(zip(clf.tags, ev["balanced"].tolist()))
    print("classifier: {} tags, held-out balanced accuracy {:.3f} (chance 0.5), {:.0f} s".format(
        len(clf.tags), float(numpy.mean(ev["balanced"])), time.time() - start), flush=True)

    data = TaggedDataset(SyntheticFaces(args.synthetic_size, seed=args.synthetic_seed, size=size), tags)
    start = time.time()
    agree = agreement.conditional_agreement(cgen, clf, data.labels, args.n, seed=5)
    control = agreement.conditional_agreement(cgen, clf, data.labels, args.n, seed=5, shuffle=True)
    print(agreement.format_agreement_table(agree, control, accuracy), flush=True)
    print("conditioning measured in {:.0f} s".format(time.time() - start), flush=True)

    start = time.time()
    vectors = tagging.tag_vectors(ugen, clf, args.vector_samples, seed=0, min_count=args.min_count)
    shares = agreement.steering_share(ugen, clf, vectors, args.n, seed=1, strength=args.strength)
    print("{} of {} tags got a tag vector; measured in {:.0f} s".format(len(vectors), len(clf.tags),
                                                                     time.time() - start), flush=True)

    rate = dict(zip(tags, data.labels.mean(0).tolist()))
    control = {c.name: c for c in control}
    print()
    print("| tag | in data | cond. P(tag \\| asked) | cond. P(tag \\| not asked) | shuffled P(tag \\| asked) "
          "| uncond. z0 | uncond. z0 + {:g} v | classifier acc. |".format(args.strength))
    print("|---|---|---|---|---|---|---|---|")
    for a in agree:
        base, after = shares.get(a.name, (None, None))
        cells = ["{:.2f}".format(rate[a.name]), "{:.2f}".format(a.p_on), "{:.2f}".format(a.p_off),
                 "{:.2f}".format(control[a.name].p_on),
                 "-" if base is None else "{:.2f}".format(base), "-" if after is None else "{:.2f}".format(after),
                 "{:.2f}".format(accuracy[a.name])]
        print("| {} | {} |".format(a.name, " | ".join(cells)))
    mean_after = [shares[a.name][1] for a in agree if a.name in shares]
    print("| mean | {:.2f} | {:.2f} | {:.2f} | {:.2f} | {} | {} | {:.2f} |".format(
        numpy.mean([rate[a.name] for a in agree]), numpy.mean([a.p_on for a in agree]),
        numpy.mean([a.p_off for a in agree]), numpy.mean([control[a.name].p_on for a in agree]),
        "{:.2f}".format(numpy.mean([shares[a.name][0] for a in agree if a.name in shares])) if mean_after else "-",
        "{:.2f}".format(numpy.mean(mean_after)) if mean_after else "-",
        numpy.mean([accuracy[a.name] for a in agree])))
    return 0


if __name__ == "__main__":
    sys.exit(main())
