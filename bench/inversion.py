"""Inversion figures for docs/inversion.rst: the encoder alone and with refinement, against baselines.

1. Generated faces (z known, drawn with --seed-gen, never a training z): mean |z - z_true| and the
   pixel error (mean absolute, grey levels 0..255) after E alone and after --steps refinement steps,
   beside a random z's.
2. Held-out embedded faces (dataset seed --heldout-seed; the default model and its encoder saw only
   seed 0): pixel error and a feature distance (L2 between the shipped tag classifier's last
   convolutional features) of E alone, E + refinement, the best of --candidates random z (by pixel
   L2) and the nearest of the --train-faces training faces (seed 0, by pixel L2: so the reader sees
   inversion is not recall of a training face).
3. Seconds per image on this CPU, one image at a time: E alone, and E + --steps refinement steps.

Writes --out (JSON) and, with --images, two sheets: generated (rows: target, E, refined) and held-out
(rows: target, E + refinement, best random z, nearest training face).

Usage::

    python bench/inversion.py --n-gen 100 --n-heldout 100 --out inversion.json --images docs/images
"""
import argparse
import json
import os
import sys
import time

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), ".."))

import chainer  # noqa: E402

from chainer_dcgan.datasets.synthetic import SyntheticFaces  # noqa: E402
from chainer_dcgan.models import sample_z  # noqa: E402
from chainer_dcgan.models.serialization import load_generator  # noqa: E402
from chainer_dcgan.utils.atomic import atomic_write  # noqa: E402
from chainer_dcgan.utils.images import save_image, tile, to_array, to_image  # noqa: E402
from chainer_dcgan.zspace import inversion, tagging  # noqa: E402

import numpy  # noqa: E402,I100


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--model", default="default", help="generator (default: default)")
    p.add_argument("--encoder", default=None, help="encoder (default: the one shipped with --model)")
    p.add_argument("--classifier", default="default", help="tag classifier for the feature distance")
    p.add_argument("--n-gen", type=int, default=100, help="generated faces (default 100)")
    p.add_argument("--n-heldout", type=int, default=100, help="held-out embedded faces (default 100)")
    p.add_argument("--candidates", type=int, default=10000, help="random z for the best-of baseline (default 10000)")
    p.add_argument("--train-faces", type=int, default=20000, help="training faces searched (default 20000)")
    p.add_argument("--steps", type=int, default=100, help="refinement steps (default 100)")
    p.add_argument("--timing-n", type=int, default=5, help="images timed one at a time (default 5)")
    p.add_argument("--seed-gen", type=int, default=2026, help="seed of the generated faces' z (default 2026)")
    p.add_argument("--heldout-seed", type=int, default=1, help="dataset seed of the held-out faces (default 1)")
    p.add_argument("--out", default="inversion.json", help="JSON of the figures")
    p.add_argument("--images", default=None, help="folder for the two sheets (PNG)")
    return p.parse_args(argv)


def quantized(x):
    return numpy.stack([to_array(to_image(a)) for a in x])


def classifier_features(clf, x, batch=100):
    """The tag classifier's last convolutional features (flattened), test mode."""
    out = []
    with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
        for i in range(0, len(x), batch):
            h = clf.features(numpy.asarray(x[i:i + batch], numpy.float32))
            out.append(h.array.reshape(len(h), -1))
    return numpy.concatenate(out)


def nearest(targets, pool_batches):
    """For each target (N, P), the pool row nearest in L2, over pool chunks given by a generator of
    ``(offset, rows (M, P))``: returns (indices, rows)."""
    t = targets.reshape(len(targets), -1).astype(numpy.float32)
    tt = (t * t).sum(1)
    best = numpy.full(len(t), numpy.inf)
    index = numpy.zeros(len(t), numpy.int64)
    rows = numpy.zeros_like(t)
    for offset, pool in pool_batches:
        p = pool.reshape(len(pool), -1).astype(numpy.float32)
        d = tt[:, None] - 2 * t @ p.T + (p * p).sum(1)[None]
        k = numpy.argmin(d, axis=1)
        better = d[numpy.arange(len(t)), k] < best
        best[better] = d[numpy.arange(len(t)), k][better]
        index[better] = offset + k[better]
        rows[better] = p[k[better]]
    return index, rows.reshape(targets.shape)


def summary(values):
    values = numpy.asarray(values, numpy.float64)
    return {"mean": round(float(values.mean()), 3), "median": round(float(numpy.median(values)), 3)}


def main(argv=None):
    args = parse_args(argv)
    gen = load_generator(args.model)
    enc = inversion.load_encoder(args.encoder or args.model, gen)
    clf = tagging.load_classifier(args.classifier)
    result = {"model": args.model, "encoder": args.encoder or args.model, "steps": args.steps,
              "load_before": os.getloadavg()}
    start = time.time()

    # 1. generated faces
    z_true = sample_z(args.n_gen, gen.z_dim, args.seed_gen)
    x = quantized(gen.generate(z_true))
    z_e = inversion.encode(enc, x)
    z_r, _ = inversion.refine(gen, x, z_e, steps=args.steps)
    z_rand = sample_z(args.n_gen, gen.z_dim, args.seed_gen + 1)
    faces = {k: gen.generate(z) for k, z in (("encoder", z_e), ("refined", z_r), ("random", z_rand))}
    result["generated"] = {
        "n": args.n_gen, "seed": args.seed_gen,
        "z_error": {k: summary(numpy.abs(z - z_true).mean(axis=1))
                    for k, z in (("encoder", z_e), ("refined", z_r), ("random", z_rand))},
        "pixel_error": {k: summary(inversion.pixel_error(f, x)) for k, f in faces.items()},
    }
    print(json.dumps(result["generated"]), flush=True)
    if args.images:
        k = min(10, args.n_gen)
        cells = numpy.concatenate([x[:k], faces["encoder"][:k], faces["refined"][:k]])
        save_image(os.path.join(args.images, "inversion_generated.png"), tile(cells, 3, k, pad=2))

    # 2. held-out embedded faces
    data = SyntheticFaces(args.n_heldout, seed=args.heldout_seed)
    h = numpy.stack([to_array(data.image(i)) for i in range(args.n_heldout)])
    h_e = inversion.encode(enc, h)
    h_r, _ = inversion.refine(gen, h, h_e, steps=args.steps)
    f_e, f_r = gen.generate(h_e), gen.generate(h_r)

    def random_pool(chunk=500):
        for offset in range(0, args.candidates, chunk):
            z = sample_z(min(chunk, args.candidates - offset), gen.z_dim,
                         numpy.random.RandomState([args.seed_gen + 2, offset]))
            yield offset, numpy.clip(gen.generate(z), -1, 1)

    _, f_best = nearest(h, random_pool())
    training = SyntheticFaces(args.train_faces, seed=0)

    def train_pool(chunk=1000):
        for offset in range(0, args.train_faces, chunk):
            yield offset, numpy.stack([to_array(training.image(i))
                                       for i in range(offset, min(offset + chunk, args.train_faces))])

    nearest_index, f_train = nearest(h, train_pool())
    feats = classifier_features(clf, h)
    rows = {"encoder": f_e, "refined": f_r, "best_random": f_best, "nearest_training_face": f_train}
    result["heldout"] = {
        "n": args.n_heldout, "dataset_seed": args.heldout_seed, "candidates": args.candidates,
        "training_faces_searched": args.train_faces,
        "pixel_error": {k: summary(inversion.pixel_error(f, h)) for k, f in rows.items()},
        "feature_distance": {k: summary(numpy.linalg.norm(classifier_features(clf, f) - feats, axis=1))
                             for k, f in rows.items()},
        "refined_beats_best_random": round(float(numpy.mean(
            inversion.pixel_error(f_r, h) < inversion.pixel_error(f_best, h))), 3),
        "refined_beats_nearest_training_face": round(float(numpy.mean(
            inversion.pixel_error(f_r, h) < inversion.pixel_error(f_train, h))), 3),
    }
    print(json.dumps(result["heldout"]), flush=True)
    if args.images:
        k = min(10, args.n_heldout)
        cells = numpy.concatenate([h[:k], f_r[:k], f_best[:k], f_train[:k]])
        save_image(os.path.join(args.images, "inversion_heldout.png"), tile(cells, 4, k, pad=2))

    # 3. seconds per image, one at a time
    one = h[:args.timing_n]
    t0 = time.time()
    for i in range(len(one)):
        inversion.encode(enc, one[i:i + 1])
    t_enc = (time.time() - t0) / len(one)
    t0 = time.time()
    for i in range(len(one)):
        inversion.invert(gen, one[i:i + 1], enc, steps=args.steps, patience=None)
    t_ref = (time.time() - t0) / len(one)
    result["seconds_per_image"] = {"encoder": round(t_enc, 4), "encoder_and_refinement": round(t_ref, 3),
                                   "n": len(one)}
    result["load_after"] = os.getloadavg()
    result["wall_seconds"] = round(time.time() - start, 1)
    print(json.dumps(result["seconds_per_image"]), flush=True)
    with atomic_write(args.out, "w") as f:
        json.dump(result, f, indent=1)
        f.write("\n")


if __name__ == "__main__":
    main()
