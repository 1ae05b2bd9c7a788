"""chainer-dcgan: the 2015 Chainer DCGAN that learned to draw anime faces, on today's stack.

``from chainer_dcgan import Generator, Discriminator, DCGANUpdater``. A trained generator, from a
file or a shipped model's name, draws faces in test mode with ``Generator.generate``::

    gen = chainer_dcgan.serialization.load_generator("default")
    x = gen.generate(gen.make_hidden(16, random_state=0))   # NumPy float32 (16, 3, 96, 96)

The public modules, by role (docs/api.rst documents each):

The model and its training
    hparams (the faithful hyper-parameters), models (the Chains: faithful, conditional),
    updater (the training step), training (wiring a run), snapshots (resuming), random_state,
    serialization (loading and saving models), pretrained (shipped models, by name),
    distributed (devices, ChainerMN).
Images and datasets
    images (image <-> array), manifest (the dataset format), atomic (atomic writes),
    jsonio (every JSON read, nesting bounded), datasets (images, iterators, synthetic, tagged).
Trainer extensions
    extensions (sample_grid, conditional_grid, statistics, fid, ema).
Metrics
    statistics (cheap image statistics), inception (InceptionV3 features), metrics (FID, KID,
    precision/recall), agreement (does a conditional model draw the tags asked for).
Data collection
    safebooru (client and store), safebooru_server (a local stand-in), faces (face cropping).
Exploring z-space
    zspace (sampling, interpolation, the demo's formula), tagging (tag classifier, tag vectors).
Browser demo
    export, export_conditional (ONNX exports), web_demo (serving the page).
Fast kernels and links
    functions (stride2_conv, batch_norm_act), links.
Command lines
    cli (argument types shared by examples/ and tools/).
"""
from chainer_dcgan import _compat

_compat.install()

from chainer_dcgan.models import Discriminator, Generator, sample_z  # noqa: E402
from chainer_dcgan.updater import DCGANUpdater  # noqa: E402

__version__ = "0.1.0"
__all__ = ["Generator", "Discriminator", "DCGANUpdater", "sample_z"]
