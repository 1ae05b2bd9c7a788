"""What the command lines in ``examples/`` and ``tools/`` share: argument types, argument groups, error lines.

Each argument type raises ``argparse.ArgumentTypeError``, so argparse names the flag and exits with status 2.
The groups (:func:`add_device_arguments`, :func:`add_model_argument`) give every tool that runs a model
the same ``--gpu/-g``, ``--device`` and ``--model`` with the same help and checks, read back with
:func:`device_from_args` and :func:`generator_from_args`. Library errors about a parameter's value
(:func:`chainer_dcgan.utils.parameter_error`) are told under the flag that gave it by :func:`error_message`:
only this layer knows the flags.

Every script ends in ``sys.exit(run_command(main))``: SIGINT and SIGTERM become :class:`Interrupted`
(a ``KeyboardInterrupt``), so ``finally`` blocks and the atomic writers' clean-up run, and the process
ends with one ``error:`` line and status 130 (SIGINT) or 143 (SIGTERM), never a traceback.
"""
import argparse
import math
import os
import signal
import sys
import tempfile

from chainer_dcgan.evaluation.metrics import parse_degradation
from chainer_dcgan.models import pretrained
from chainer_dcgan.models.serialization import load_generator, nonfinite_warning
from chainer_dcgan.training.diffaugment import parse_policy
from chainer_dcgan.training.distributed import resolve_device
from chainer_dcgan.utils.images import image_format


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected {}, got {!r}".format(
            "an integer" if kind is int else "a number", text)) from None


def positive_int(text):
    """An integer >= 1."""
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be >= 1, got {}".format(text))
    return value


def non_negative_int(text):
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0, got {}".format(text))
    return value


def non_negative_float(text):
    """A number >= 0 (NaN is refused)."""
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0, got {}".format(text))
    return value


def fraction(text):
    """A number in [0, 1)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be in [0, 1), got {}".format(text))
    return value


def finite_float(text):
    """Any finite number (NaN and infinities are refused)."""
    value = _number(text, float)
    if not math.isfinite(value):
        raise argparse.ArgumentTypeError("must be a finite number, got {}".format(text))
    return value


def probability(text):
    """A number in [0, 1]."""
    value = _number(text, float)
    if not 0 <= value <= 1:
        raise argparse.ArgumentTypeError("must be in [0, 1], got {}".format(text))
    return value


def open_probability(text):
    """A number in (0, 1): a probability to aim for, which a logistic output never reaches at 0 or 1."""
    value = _number(text, float)
    if not 0 < value < 1:
        raise argparse.ArgumentTypeError("must be in (0, 1), got {}".format(text))
    return value


def seed(text):
    """A random seed: an integer in [0, 2**32 - 1] (what NumPy's RandomState accepts)."""
    value = _number(text, int)
    if not 0 <= value < 2 ** 32:
        raise argparse.ArgumentTypeError("must be in 0..4294967295, got {}".format(text))
    return value


def port(text):
    """A TCP port in 0..65535 (0: any free one)."""
    value = _number(text, int)
    if not 0 <= value <= 65535:
        raise argparse.ArgumentTypeError("must be in 0..65535, got {}".format(text))
    return value


def positive_float(text):
    """A finite number > 0."""
    value = _number(text, float)
    if not (value > 0 and math.isfinite(value)):
        raise argparse.ArgumentTypeError("must be a finite number > 0, got {}".format(text))
    return value


def augmentation_policy(text):
    """A comma-separated list of DiffAugment steps (color, translation, cutout), as a list of names."""
    try:
        return list(parse_policy(text))
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def _check_writable(folder):
    """Raise ArgumentTypeError unless a file can really be created in ``folder``.

    A temporary file is made and removed there: ``os.access`` checks permission bits, which root
    always passes, while /proc, /sys, /dev/pts or an immutable folder refuse new files to root too.
    """
    try:
        with tempfile.TemporaryFile(dir=folder):  # unnamed where the filesystem allows: the folder is unchanged
            pass
    except OSError as e:
        raise argparse.ArgumentTypeError("cannot write in {} ({})".format(folder, e.strerror or e)) from None


def _writable_parent(path):
    """Raise ArgumentTypeError unless the nearest existing folder above ``path`` is a writable folder."""
    parent = os.path.dirname(os.path.abspath(path))
    while not os.path.exists(parent):
        parent = os.path.dirname(parent)
    if not os.path.isdir(parent):
        raise argparse.ArgumentTypeError("{} is not a folder".format(parent))
    _check_writable(parent)


def output_folder(text):
    """A folder to write into (created if missing): not empty, not an existing file, not the root
    folder (or a symlink to it), writable."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty (give a folder name)")
    if os.path.realpath(text) == os.path.realpath(os.sep):
        raise argparse.ArgumentTypeError("{} is the root folder {}; give a folder of its own".format(
            text, os.sep))
    if os.path.exists(text) and not os.path.isdir(text):
        raise argparse.ArgumentTypeError("{} exists and is not a folder".format(text))
    if os.path.isdir(text):
        _check_writable(text)
    else:
        _writable_parent(text)
    return text


def output_file(text):
    """A file to write (its folder is created if missing): not empty, not an existing folder, writable."""
    if not text:
        raise argparse.ArgumentTypeError("must not be empty (give a file name)")
    if os.path.isdir(text) or text.endswith(os.sep):
        raise argparse.ArgumentTypeError("{} is a folder; give a file name".format(text))
    _writable_parent(text)
    return text


def degradation(text):
    """``blur:SIGMA`` or ``noise:SIGMA`` (:func:`chainer_dcgan.evaluation.metrics.parse_degradation`), as
    ``(kind, amount)``."""
    try:
        return parse_degradation(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None


def output_image(text):
    """An image file to write (see :func:`output_file`) whose extension names a format that can be
    written (.png, .jpg, .webp, .gif, .bmp, .tiff...): what is written is what the extension says."""
    text = output_file(text)
    try:
        image_format(text)
    except ValueError as e:
        raise argparse.ArgumentTypeError(str(e)) from None
    return text


def above_one(text):
    """A finite number > 1 (e.g. a detector's scale step)."""
    value = _number(text, float)
    if not (value > 1 and math.isfinite(value)):
        raise argparse.ArgumentTypeError("must be a finite number > 1, got {}".format(text))
    return value


def warn_nonfinite(link, path):
    """Print one ``warning:`` line to stderr when ``link`` (loaded from ``path``) holds NaN or infinite
    parameters (see :func:`chainer_dcgan.models.serialization.nonfinite_warning`): its faces come out blank."""
    warning = nonfinite_warning(link, path)
    if warning:
        print(warning, file=sys.stderr)


def tag_list(text):
    """Comma-separated tag names -> a list of str (blanks dropped); at least one name."""
    tags = [t.strip() for t in text.split(",") if t.strip()]
    if not tags:
        raise argparse.ArgumentTypeError("no tag names given")
    return tags


def gpu_id(text):
    """A GPU id (>= 0), or -1 for the CPU."""
    value = _number(text, int)
    if value < -1:
        raise argparse.ArgumentTypeError("must be a GPU id >= 0, or -1 for the CPU; got {}".format(text))
    return value


def add_device_arguments(parser, what="run the model"):
    """Add ``--gpu/-g`` and ``--device`` (one or the other) to ``parser``; read them with :func:`device_from_args`.

    ``what`` ends the help's first sentence ("GPU id to ``what`` on").
    """
    group = parser.add_mutually_exclusive_group()
    group.add_argument("--gpu", "-g", type=gpu_id, default=-1,
                       help="GPU id to {} on through CuPy; -1 (default) uses the CPU with NumPy".format(what))
    group.add_argument("--device", default=None,
                       help="Chainer device specifier instead of --gpu, e.g. @numpy or @cupy:0")
    return group


def device_from_args(args, context=None):
    """The ``chainer.backend.Device`` that ``--gpu``/``--device`` ask for (``context``: a
    :class:`~chainer_dcgan.training.distributed.Context`, which gives each rank its own GPU).

    Raises:
        ValueError: the device cannot be used; :func:`error_message` names the flag.
    """
    if context is not None:
        return context.device(args.gpu, args.device)
    return resolve_device(args.gpu, args.device)


MODEL_HELP = ("generator weights: .npz (gen_iter_N.npz or a trainer snapshot), the 2015 original's .h5, "
              "or a shipped model's name ({})").format(", ".join(pretrained.names()) or pretrained.DEFAULT)


def add_model_argument(parser, *names, **kwargs):
    """Add the generator argument (``--model`` unless ``names`` say otherwise, e.g. ``"model"`` for a
    positional one): a file or a shipped model's name, loaded by :func:`generator_from_args`."""
    kwargs.setdefault("help", MODEL_HELP)
    if not names:
        names = ("--model",)
        kwargs.setdefault("required", True)
    return parser.add_argument(*names, **kwargs)


def generator_from_args(args, device=None):
    """The generator of ``args.model`` (a file or a shipped name), on ``device`` when given, after one
    ``warning:`` line when its weights hold NaN or infinities (:func:`warn_nonfinite`).

    Raises:
        ModelFileError: the file is missing or is not a generator.
    """
    gen = load_generator(args.model)
    warn_nonfinite(gen, args.model)
    if device is not None:
        gen.to_device(device)
    return gen


#: The flag of each library parameter whose name differs from its flag's (``--`` + the name with dashes).
FLAGS = {"snapshot": "--resume", "root": "--dataset"}


def error_message(error, flags=None):
    """The text of ``error:`` line for ``error``. A library error about a parameter's value
    (:func:`chainer_dcgan.utils.parameter_error`) names the flag that gave the value instead:
    ``flags[parameter]``, else :data:`FLAGS`, else ``--`` + the name with dashes."""
    parameter = getattr(error, "parameter", None)
    if parameter is None:
        return str(error)
    flag = (flags or {}).get(parameter) or FLAGS.get(parameter) or "--" + parameter.replace("_", "-")
    return flag + error.detail


def print_error(error, flags=None):
    """Print ``error: MESSAGE`` (see :func:`error_message`) to stderr."""
    print("error: {}".format(error_message(error, flags)), file=sys.stderr)


class Interrupted(KeyboardInterrupt):
    """SIGINT or SIGTERM arrived (``signum``); raised in the main thread by :func:`run_command`'s handler."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = signum


def _interrupt(signum, frame):
    raise Interrupted(signum)


def interrupted_status(error):
    """The exit status for a ``KeyboardInterrupt`` (or :class:`Interrupted`): 128 + the signal's number."""
    return 128 + getattr(error, "signum", signal.SIGINT)


def run_command(main, argv=None):
    """``main(argv)`` as a process runs it: SIGINT/SIGTERM raise :class:`Interrupted` (one handler for
    every script), and an interruption that ``main`` does not handle ends in one ``error:`` line and
    status 130/143 (see :func:`interrupted_status`). Returns ``main``'s status."""
    for signum in (signal.SIGINT, signal.SIGTERM):
        signal.signal(signum, _interrupt)
    try:
        return main(argv)
    except KeyboardInterrupt as e:
        for signum in (signal.SIGINT, signal.SIGTERM):  # a second signal must not interrupt the report
            signal.signal(signum, signal.SIG_IGN)
        name = signal.Signals(getattr(e, "signum", signal.SIGINT)).name
        print("error: interrupted by {}; files written before are whole, the one being written was not put "
              "in place".format(name), file=sys.stderr)
        return interrupted_status(e)
