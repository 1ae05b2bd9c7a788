"""The switch between the fast paths and Chainer's own functions, re-exported by :mod:`chainer_dcgan.functions`."""
import os

import chainer

_OFF = ("0", "false", "no", "off")


def fast_default():
    """The default of ``chainer.config.dcgan_fast``: False where ``CHAINER_DCGAN_FAST`` is 0/false/no/off."""
    return os.environ.get("CHAINER_DCGAN_FAST", "1").strip().lower() not in _OFF


def enabled():
    """Whether the fast paths are on (``chainer.config.dcgan_fast``, else :func:`fast_default`)."""
    value = getattr(chainer.config, "dcgan_fast", None)
    return fast_default() if value is None else bool(value)


__all__ = ["enabled", "fast_default"]
