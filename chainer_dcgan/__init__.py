"""chainer-dcgan: the 2015 Chainer DCGAN that learned to draw anime faces, on today's stack.

``from chainer_dcgan import Generator, Discriminator, DCGANUpdater``. A trained generator, from a
file or a shipped model's name, draws faces in test mode with ``Generator.generate``::

    gen = chainer_dcgan.models.serialization.load_generator("default")
    x = gen.generate(gen.make_hidden(16, random_state=0))   # NumPy float32 (16, 3, 96, 96)

The public modules, by folder (docs/api.rst documents each):

models
    hparams (the faithful hyper-parameters), faithful and conditional (the Chains), serialization
    (loading and saving models), pretrained (shipped models, by name).
training
    the trainer's wiring (build_trainer, resume), updater (the training step), optimizers (Adam
    with a fused CPU step), diffaugment
    (augmenting D's inputs, an option), snapshots (resuming), distributed (devices, ChainerMN),
    extensions (sample_grid, conditional_grid, statistics, fid, ema).
datasets
    images, iterators, synthetic, tagged (the datasets), manifest (the dataset folder's format).
collection
    safebooru (errors, posts, client, store, scraping: the site's client and the image store), faces
    (face cropping): building a dataset from the web.
evaluation
    statistics (cheap image statistics), inception (InceptionV3 features), metrics (FID, KID,
    precision/recall), agreement (does a conditional model draw the tags asked for).
zspace
    sampling, interpolation, the demo's formula; tagging (tag classifier, tag vectors);
    inversion (image -> z: the encoder, refinement).
export
    the browser demo's ONNX export, one exporter for both model kinds (unconditional and conditional:
    their graphs; manifest: demo.json's types; encoder: the inversion encoder's).
demo
    server (serving the page), shipped (the demo export of a shipped model).
utils
    atomic (atomic writes), jsonio (every JSON read, nesting bounded, fields type-checked), limits (what a
    file or flag may declare), images (image <-> array),
    random_state (seeded random sources), cache (the one cache folder, $CHAINER_DCGAN_CACHE),
    memory (a training process keeps freed memory for reuse).
testing
    safebooru_server (a local stand-in for safebooru, for tests and benchmarks).
functions, links
    fast kernels (stride2_conv, batch_norm_act) and the links calling them.
cli, commands
    argument types, argument groups (--gpu/--device, --model) and error lines shared by examples/ and tools/;
    ``chainer-dcgan COMMAND`` in front of them.

Modules that lived flat in this folder before still import under their old names
(``chainer_dcgan.serialization``, ``chainer_dcgan.updater``, ...): see ``_moved.MOVED``.
"""
from chainer_dcgan import _compat, _moved

_compat.install()
_moved.install()

from chainer_dcgan.models import Discriminator, Generator, sample_z  # noqa: E402
from chainer_dcgan.training.updater import DCGANUpdater  # noqa: E402

__getattr__ = _moved.package_getattr

__version__ = "0.1.0"
__all__ = ["Generator", "Discriminator", "DCGANUpdater", "sample_z"]
