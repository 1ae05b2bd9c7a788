"""Sample grids of a conditional generator: one tag set per row, the same z in every row."""
import os

import numpy
from chainer import training

from chainer_dcgan.models import generate, sample_z
from chainer_dcgan.utils.atomic import atomic_write
from chainer_dcgan.utils.images import save_image, tile


def grid_tag_sets(tag_sets, rows, seed=0):
    """Up to ``rows`` distinct rows of ``tag_sets`` (``float (M, K)``), in a seeded random order: ``float32 (R, K)``."""
    tag_sets = numpy.asarray(tag_sets, dtype=numpy.float32)
    chosen, seen = [], set()
    for i in numpy.random.RandomState(seed).permutation(len(tag_sets)):
        key = tag_sets[i].tobytes()
        if key not in seen:
            seen.add(key)
            chosen.append(tag_sets[i])
            if len(chosen) == rows:
                break
    return numpy.stack(chosen)


def legend_lines(tags, rows):
    """One line per grid row: ``"row 1: blonde_hair, long_hair"`` (fractional weights as ``name=0.5``)."""
    lines = []
    for r, y in enumerate(rows, 1):
        names = [t if w == 1 else "{}={:g}".format(t, w) for t, w in zip(tags, y) if w != 0]
        lines.append("row {}: {}".format(r, ", ".join(names) or "(no tags)"))
    return lines


class ConditionalSampleGrid(training.Extension):
    """Writes ``out/preview/image_iter_{iteration:08d}.png`` and, once, ``out/preview/legend.txt``.

    Row r of the grid is conditioned on tag set ``tag_rows[r]``; column c uses the same z in every
    row, fixed for the run (saved in snapshots), so the rows differ by their tags alone.

    Args:
        gen (chainer_dcgan.models.ConditionalGenerator): the model.
        tag_rows: ``float32 (R, K)``, one tag set per row (e.g. :func:`grid_tag_sets`).
        cols (int): faces per row.
        seed (int or None): seed of the fixed z.
        subdir (str): folder under the trainer's ``out``.
    """

    trigger = 100, "iteration"
    priority = training.PRIORITY_WRITER

    def __init__(self, gen, tag_rows, cols=10, seed=None, subdir="preview"):
        self.gen = gen
        self.tag_rows = numpy.asarray(tag_rows, dtype=numpy.float32)
        if self.tag_rows.ndim != 2 or self.tag_rows.shape[1] != len(gen.tags):
            raise ValueError("tag_rows must have shape (R, {}), got {}".format(len(gen.tags), self.tag_rows.shape))
        self.cols = cols
        self.subdir = subdir
        self.fixed_z = sample_z(cols, gen.z_dim, numpy.random.RandomState(seed))

    def sample(self):
        """``(z, y)`` of the grid, row-major: ``float32 (R*cols, z_dim)`` and ``float32 (R*cols, K)``."""
        rows = len(self.tag_rows)
        return numpy.tile(self.fixed_z, (rows, 1)), numpy.repeat(self.tag_rows, self.cols, axis=0)

    def __call__(self, trainer):
        folder = os.path.join(trainer.out, self.subdir)
        legend = os.path.join(folder, "legend.txt")
        if not os.path.isfile(legend):
            with atomic_write(legend, "w") as f:
                f.write("\n".join(legend_lines(self.gen.tags, self.tag_rows)) + "\n")
        z, y = self.sample()
        path = os.path.join(folder, "image_iter_{:08d}.png".format(trainer.updater.iteration))
        save_image(path, tile(generate(self.gen, z, y=y), len(self.tag_rows), self.cols))

    def serialize(self, serializer):
        self.fixed_z = serializer("fixed_z", self.fixed_z)
        self.tag_rows = serializer("tag_rows", self.tag_rows)
