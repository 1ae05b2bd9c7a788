"""Faster Chainer functions for the DCGAN's layer shapes, selected automatically.

Each function here has the signature and the mathematics of a Chainer function, takes its fast
path for the shapes it supports and calls Chainer's own otherwise:

* :func:`convolution_2d`, :func:`deconvolution_2d`: 4x4, stride 2, pad 1 (every layer of the
  DCGAN) as four large matrix products on a space-to-depth layout (:mod:`.stride2_conv`);
* :func:`batch_normalization_activation`, :func:`fixed_batch_normalization_activation`:
  BatchNormalization and the ReLU/ELU/leaky ReLU after it in one pass (:mod:`.batch_norm_act`);
* :func:`elu`: ELU (alpha 1) in place on one copy.

Arrays may be NumPy or CuPy. The switch is ``chainer.config.dcgan_fast``: set it with
``chainer.using_config("dcgan_fast", False)`` to run Chainer's own functions (to compare, or for
second-order gradients, which the fused BatchNormalization lacks). Unset, it defaults to the
environment variable ``CHAINER_DCGAN_FAST`` (``0``/``false``/``off`` disable; on by default).
"""

import chainer
import chainer.functions as F

from chainer_dcgan.functions._switch import enabled, fast_default
from chainer_dcgan.functions.batch_norm_act import (ELU, AffineActivation,  # noqa: F401
                                                    BatchNormalizationActivation)
from chainer_dcgan.functions.stride2_conv import (Convolution2D, Deconvolution2D,  # noqa: F401
                                                  convolution_2d, deconvolution_2d)

__all__ = ["enabled", "fast_default", "convolution_2d", "deconvolution_2d", "batch_normalization_activation",
           "fixed_batch_normalization_activation", "elu", "activation"]

def activation(x, name):
    """Chainer's own ``relu``/``elu``/``leaky_relu`` (slope 0.2) by name; None is the identity."""
    if name is None:
        return x
    if name == "relu":
        return F.relu(x)
    if name == "elu":
        return F.elu(x)
    if name == "leaky_relu":
        return F.leaky_relu(x, 0.2)
    raise ValueError("activation must be None, 'relu', 'elu' or 'leaky_relu', got {!r}".format(name))


def _supported_bn(x, axis):
    dtype = x.dtype
    return x.ndim >= 2 and axis in (None, (0,) + tuple(range(2, x.ndim))) and dtype.kind == "f" \
        and dtype.itemsize >= 4


def batch_normalization_activation(x, gamma, beta, eps=2e-5, running_mean=None, running_var=None, decay=0.9,
                                   activation_name=None, axis=None):
    """``activation(F.batch_normalization(x, gamma, beta, eps, running_mean, running_var, decay, axis))``.

    Args:
        x: ``(N, C)`` or ``(N, C, H, W)`` float32/float64 Variable or array.
        gamma, beta: ``(C,)``.
        running_mean, running_var: ``(C,)`` arrays updated in place, or None.
        activation_name: None, ``"relu"``, ``"elu"`` or ``"leaky_relu"`` (slope 0.2).
        axis: as Chainer's (None: all but axis 1); other axes take Chainer's own path.

    Returns:
        Variable, the shape and dtype of ``x``.
    """
    xa = x.array if isinstance(x, chainer.Variable) else x
    if enabled() and _supported_bn(xa, axis):
        node = BatchNormalizationActivation(eps, running_mean, running_var, decay, activation_name)
        return node.apply((x, gamma, beta))[0]
    h = F.batch_normalization(x, gamma, beta, eps=eps, running_mean=running_mean, running_var=running_var,
                              decay=decay, axis=axis)
    return activation(h, activation_name)


def fixed_batch_normalization_activation(x, gamma, beta, mean, var, eps=2e-5, activation_name=None, axis=None):
    """``activation(F.fixed_batch_normalization(x, gamma, beta, mean, var, eps, axis))`` (test mode).

    Shapes as :func:`batch_normalization_activation`; ``mean`` and ``var`` are ``(C,)``.
    """
    xa = x.array if isinstance(x, chainer.Variable) else x
    if enabled() and _supported_bn(xa, axis):
        scale = gamma * F.rsqrt(var + eps)
        shift = beta - mean * scale
        return AffineActivation(activation_name).apply((x, scale, shift))[0]
    return activation(F.fixed_batch_normalization(x, gamma, beta, mean, var, eps, axis=axis), activation_name)


def elu(x):
    """``F.elu(x)`` (alpha 1) with one pass forward and one backward when the fast path is on."""
    xa = x.array if isinstance(x, chainer.Variable) else x
    if enabled() and xa.dtype.kind == "f":
        return ELU().apply((x,))[0]
    return F.elu(x)
