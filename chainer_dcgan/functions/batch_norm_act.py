"""BatchNormalization fused with the ReLU/ELU/leaky ReLU that follows it, and a lean ELU.

Chainer's ``batch_normalization`` followed by ``relu`` or ``elu`` walks the activations about a
dozen times on the CPU (mean, variance, normalise, scale, shift, activation, each with its own
temporaries, and as many again backwards). The fused node normalises, scales, shifts and
activates in place on one buffer, and its backward pass needs only the input, the output and
two per-channel reductions. The activation's derivative is read from the output ``y``:

* ReLU: ``y > 0``;
* ELU (alpha 1): ``min(y + 1, 1)`` (``exp(z) = y + 1`` where ``z < 0``);
* leaky ReLU (slope s > 0): ``1`` where ``y > 0``, else ``s``.

Channels are axis 1 (``(N, C)`` or ``(N, C, H, W)``); statistics are over all other axes, as
``chainer.links.BatchNormalization`` computes them for these shapes.
"""
import numpy
from chainer import function_node
from chainer.backend import get_array_module
from chainer.utils import type_check

from chainer_dcgan.functions import _kernels

ACTIVATIONS = (None, "relu", "elu", "leaky_relu")
LEAKY_SLOPE = 0.2


def _check_activation(activation):
    if activation not in ACTIVATIONS:
        raise ValueError("activation must be one of {}, got {!r}".format(ACTIVATIONS, activation))


def _activate_(z, activation):
    """Apply ``activation`` to ``z`` in place; returns ``z``."""
    xp = get_array_module(z)
    if activation == "relu":
        xp.maximum(z, 0, out=z)
    elif activation == "elu":
        if xp is numpy:
            # max(z, 0) + (exp(min(z, 0)) - 1): NumPy's exp is vectorised, its expm1 and masked
            # (where=) loops are not (6x slower); exp(t) - 1 is within 1.2e-7 of expm1 for t <= 0.
            t = numpy.minimum(z, 0)
            numpy.exp(t, out=t)
            t -= 1
            numpy.maximum(z, 0, out=z)
            z += t
        else:
            z[...] = xp.where(z < 0, xp.expm1(z), z)
    elif activation == "leaky_relu":
        if xp is numpy:
            numpy.multiply(z, LEAKY_SLOPE, out=z, where=z < 0)
        else:
            z[...] = xp.where(z < 0, z * LEAKY_SLOPE, z)
    return z


def _activation_grad(gy, y, activation):
    """``gy * activation'(z)`` as a new array, the derivative read from the output ``y``."""
    xp = get_array_module(y)
    if activation is None:
        return gy.copy()
    if activation == "relu":
        return gy * (y > 0)
    if activation == "elu":
        d = y + 1
        xp.minimum(d, 1, out=d)
        d *= gy
        return d
    return gy * xp.where(y > 0, y.dtype.type(1), y.dtype.type(LEAKY_SLOPE))


def _channel_view(a):
    """``(N, C, ...)`` -> ``(N, C, R)`` view, R the product of the remaining axes (1 if none)."""
    return a.reshape(a.shape[0], a.shape[1], -1)


def _channel_sum(a3):
    """Sum of ``(N, C, R)`` over axes 0 and 2 -> ``(C,)``."""
    return a3.sum(axis=2).sum(axis=0) if a3.shape[2] > 1 else a3.sum(axis=(0, 2))


def _channel_dot(a3, b3):
    """``sum(a3 * b3)`` over axes 0 and 2 -> ``(C,)`` without a full-size temporary."""
    xp = get_array_module(a3)
    if a3.shape[2] == 1:
        return xp.einsum("nc,nc->c", a3[:, :, 0], b3[:, :, 0])
    return xp.einsum("ncr,ncr->nc", a3, b3).sum(axis=0)


def _bcast(v, ndim):
    return v.reshape((1, -1) + (1,) * (ndim - 2))


class BatchNormalizationActivation(function_node.FunctionNode):
    """Training-mode ``activation(batch_normalization(x, gamma, beta))`` updating running statistics.

    Inputs x ``(N, C, ...)`` float, gamma and beta ``(C,)``; output the shape of x. Running mean and
    variance (``(C,)`` arrays, or None) are updated in place as
    ``chainer.functions.batch_normalization`` does (variance unbiased by ``m / (m - 1)``).
    First-order gradients only.
    """

    def __init__(self, eps, running_mean, running_var, decay, activation):
        _check_activation(activation)
        self.eps = eps
        self.running_mean = running_mean
        self.running_var = running_var
        self.decay = decay
        self.activation = activation

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ("x", "gamma", "beta"))
        x_type, gamma_type, beta_type = in_types
        type_check.expect(
            x_type.dtype.kind == "f",
            x_type.ndim >= 2,
            gamma_type.ndim == 1,
            gamma_type.shape[0] == x_type.shape[1],
            gamma_type.dtype == x_type.dtype,
            beta_type.dtype == x_type.dtype,
            beta_type.shape == gamma_type.shape,
        )

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, gamma, beta = inputs
        xp = get_array_module(x)
        x3 = _channel_view(x)
        m = float(x3.shape[0] * x3.shape[2])  # a float: numpy 1.x turns float32 / large int into float64
        if _kernels.active(x, gamma, beta):
            y, mean, var = _kernels.bn_act_forward(x, gamma, beta, self.eps, self.activation)
            inv_std = 1 / xp.sqrt(var + x.dtype.type(self.eps))
        else:
            mean = _channel_sum(x3) / m
            y = x - _bcast(mean, x.ndim)
            var = _channel_dot(_channel_view(y), _channel_view(y)) / m
            inv_std = 1 / xp.sqrt(var + self.eps)
            y *= _bcast(gamma * inv_std, x.ndim)
            y += _bcast(beta, x.ndim)
            _activate_(y, self.activation)
        self.mean, self.inv_std = mean, inv_std
        if self.running_mean is not None:
            adjust = m / max(m - 1.0, 1.0)
            self.running_mean *= self.decay
            self.running_mean += (1 - self.decay) * mean
            self.running_var *= self.decay
            self.running_var += (1 - self.decay) * adjust * var
        self.retain_outputs((0,))
        return y,

    def backward(self, indexes, grad_outputs):
        x, gamma = self.get_retained_inputs()
        y, = self.get_retained_outputs()
        return _BatchNormalizationActivationGrad(self).apply((x, gamma, y, grad_outputs[0]))


class _BatchNormalizationActivationGrad(function_node.FunctionNode):
    """(x, gamma, y, gy) -> (gx, ggamma, gbeta) of :class:`BatchNormalizationActivation`."""

    def __init__(self, parent):
        self.mean, self.inv_std, self.activation = parent.mean, parent.inv_std, parent.activation

    def forward(self, inputs):
        x, gamma, y, gy = inputs
        if _kernels.active(x, gamma, y, gy):
            return _kernels.bn_act_backward(x, y, gy, gamma, self.mean, self.inv_std, self.activation)
        gz = _activation_grad(gy, y, self.activation)
        x3, gz3 = _channel_view(x), _channel_view(gz)
        m = float(x3.shape[0] * x3.shape[2])
        gbeta = _channel_sum(gz3)
        ggamma = self.inv_std * (_channel_dot(gz3, x3) - self.mean * gbeta)
        a = gamma * self.inv_std
        b = -a * self.inv_std * ggamma / m
        c = -a * gbeta / m - b * self.mean
        gx = gz
        gx *= _bcast(a, x.ndim)
        gx += x * _bcast(b, x.ndim)
        gx += _bcast(c, x.ndim)
        return gx, ggamma.astype(x.dtype, copy=False), gbeta.astype(x.dtype, copy=False)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            "chainer_dcgan's fused BatchNormalization has no second-order gradient; "
            "run with chainer.using_config('dcgan_fast', False) (or CHAINER_DCGAN_FAST=0) for double backprop")


class AffineActivation(function_node.FunctionNode):
    """``activation(x * scale + shift)`` per channel (axis 1): test-mode BatchNormalization, folded.

    Inputs x ``(N, C, ...)``, scale and shift ``(C,)``; output the shape of x. First-order gradients.
    """

    def __init__(self, activation):
        _check_activation(activation)
        self.activation = activation

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ("x", "scale", "shift"))
        x_type, s_type, t_type = in_types
        type_check.expect(
            x_type.dtype.kind == "f",
            x_type.ndim >= 2,
            s_type.shape[0] == x_type.shape[1],
            s_type.ndim == 1,
            t_type.shape == s_type.shape,
            s_type.dtype == x_type.dtype,
            t_type.dtype == x_type.dtype,
        )

    def forward(self, inputs):
        x, scale, shift = inputs
        y = x * _bcast(scale, x.ndim)
        y += _bcast(shift, x.ndim)
        _activate_(y, self.activation)
        self.retain_inputs((0, 1))
        self.retain_outputs((0,))
        return y,

    def backward(self, indexes, grad_outputs):
        x, scale = self.get_retained_inputs()
        y, = self.get_retained_outputs()
        return _AffineActivationGrad(self.activation).apply((x, scale, y, grad_outputs[0]))


class _AffineActivationGrad(function_node.FunctionNode):
    def __init__(self, activation):
        self.activation = activation

    def forward(self, inputs):
        x, scale, y, gy = inputs
        if _kernels.active(x, scale, y, gy):
            return _kernels.affine_act_backward(x, y, gy, scale, self.activation)
        gz = _activation_grad(gy, y, self.activation)
        gz3 = _channel_view(gz)
        gshift = _channel_sum(gz3)
        gscale = _channel_dot(gz3, _channel_view(x))
        gz *= _bcast(scale, x.ndim)
        return gz, gscale.astype(x.dtype, copy=False), gshift.astype(x.dtype, copy=False)

    def backward(self, indexes, grad_outputs):
        raise NotImplementedError(
            "chainer_dcgan's fused affine activation has no second-order gradient; "
            "run with chainer.using_config('dcgan_fast', False) (or CHAINER_DCGAN_FAST=0) for double backprop")


class ELU(function_node.FunctionNode):
    """``elu(x)`` with alpha 1, computed in place on one copy; the gradient is read from ``y``."""

    def check_type_forward(self, in_types):
        type_check._argname(in_types, ("x",))
        type_check.expect(in_types[0].dtype.kind == "f")

    def forward(self, inputs):
        if _kernels.active(inputs[0]):
            y = _kernels.elu_forward(inputs[0])
        else:
            y = _activate_(inputs[0].copy(), "elu")
        self.retain_outputs((0,))
        return y,

    def backward(self, indexes, grad_outputs):
        y, = self.get_retained_outputs()
        return _ELUGrad().apply((y, grad_outputs[0]))


class _ELUGrad(function_node.FunctionNode):
    def forward(self, inputs):
        y, gy = inputs
        self.retain_inputs((0, 1))
        if _kernels.active(y, gy):
            return _kernels.elu_backward(y, gy),
        return _activation_grad(gy, y, "elu"),

    def backward(self, indexes, grad_outputs):
        # d/dy [gy * min(y + 1, 1)] = gy where y < 0; d/dgy = min(y + 1, 1).
        from chainer import functions as F
        y, gy = self.get_retained_inputs()
        ggx, = grad_outputs
        xp = get_array_module(y)
        neg = xp.asarray(y.array < 0, dtype=y.dtype)
        ret = []
        if 0 in indexes:
            ret.append(ggx * gy * neg)
        if 1 in indexes:
            ret.append(ggx * F.minimum(y + 1, xp.ones_like(y.array)))
        return ret
