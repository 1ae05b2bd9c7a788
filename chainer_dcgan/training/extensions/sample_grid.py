"""The original's sample grid: 10x10 faces, half of them from z fixed for the whole run."""
import os

import numpy
from chainer import training

from chainer_dcgan.models import generate, hparams, sample_z
from chainer_dcgan.utils.images import save_image, tile
from chainer_dcgan.utils.random_state import serialize_random_state


class SampleGrid(training.Extension):
    """Writes ``out/preview/image_iter_{iteration:08d}.png``: a ``rows x cols`` grid of faces.

    The first ``fixed`` faces come from z drawn once for the whole run (so a reader can watch the
    same faces sharpen), the rest from fresh z each time, as in the original. Both are saved in
    trainer snapshots, so a resumed run continues the same sequence.

    Args:
        gen (chainer_dcgan.models.Generator): the model to sample.
        rows, cols (int): grid shape.
        fixed (int): how many cells use the run's fixed z.
        seed (int or None): seed for the fixed z and the fresh ones.
        subdir (str): folder under the trainer's ``out``.
    """

    trigger = 100, "iteration"
    priority = training.PRIORITY_WRITER

    def __init__(self, gen, rows=hparams.GRID_ROWS, cols=hparams.GRID_COLS, fixed=hparams.GRID_FIXED,
                 seed=None, subdir="preview"):
        if not 0 <= fixed <= rows * cols:
            raise ValueError("fixed must lie in [0, rows*cols], got {}".format(fixed))
        self.gen = gen
        self.rows, self.cols, self.fixed = rows, cols, fixed
        self.subdir = subdir
        self.random_state = numpy.random.RandomState(seed)
        self.fixed_z = sample_z(fixed, gen.z_dim, self.random_state)

    def sample(self):
        """The next grid's z, ``float32 (rows*cols, z_dim)``: fixed ones first."""
        fresh = sample_z(self.rows * self.cols - self.fixed, self.gen.z_dim, self.random_state)
        return numpy.concatenate([self.fixed_z, fresh])

    def __call__(self, trainer):
        arrays = generate(self.gen, self.sample())
        path = os.path.join(trainer.out, self.subdir, "image_iter_{:08d}.png".format(trainer.updater.iteration))
        save_image(path, tile(arrays, self.rows, self.cols))

    def serialize(self, serializer):
        self.fixed_z = serializer("fixed_z", self.fixed_z)
        serialize_random_state(serializer["random_state"], self.random_state)
