"""Chainer's own links, calling :mod:`chainer_dcgan.functions` (fast paths chosen automatically).

Parameters, persistent values, their names and shapes are those of the parent classes, so
snapshots and HDF5/npz files are interchangeable with plain ``chainer.links``; only ``forward``
differs, and with ``chainer.config.dcgan_fast`` False it is the parent's.
"""
import chainer
import chainer.links as L
from chainer import configuration

from chainer_dcgan import functions

__all__ = ["Convolution2D", "Deconvolution2D", "BatchNormalization"]


class Convolution2D(L.Convolution2D):
    """``chainer.links.Convolution2D`` whose 4x4/stride 2/pad 1 case runs :func:`functions.convolution_2d`."""

    def forward(self, x):
        if (not functions.enabled() or self.W.array is None or getattr(self, "x_layout", None) is not None
                or getattr(self, "cudnn_fast", False)):
            return super().forward(x)
        return functions.convolution_2d(x, self.W, self.b, self.stride, self.pad, dilate=self.dilate,
                                        groups=self.groups)


class Deconvolution2D(L.Deconvolution2D):
    """``chainer.links.Deconvolution2D`` whose 4x4/stride 2/pad 1 case runs :func:`functions.deconvolution_2d`."""

    def forward(self, x):
        if not functions.enabled() or self.W.array is None:
            return super().forward(x)
        return functions.deconvolution_2d(x, self.W, self.b, self.stride, self.pad, self.outsize,
                                          dilate=self.dilate, groups=self.groups)


class BatchNormalization(L.BatchNormalization):
    """``chainer.links.BatchNormalization`` that can apply the activation after it in the same pass.

    ``bn(x, activation="relu")`` equals ``F.relu(bn(x))`` (also ``"elu"``, ``"leaky_relu"`` with
    slope 0.2, or None), running statistics included; fine-tuning mode and other ``axis`` settings
    take the parent's path.
    """

    def forward(self, x, activation=None, **kwargs):
        finetune = kwargs.get("finetune", False)
        if (not functions.enabled() or finetune or self.avg_mean is None or self.gamma is None
                or self.beta is None or getattr(self, "axis", None) is not None):
            return functions.activation(super().forward(x, **kwargs), activation)
        if configuration.config.train:
            in_recomputing = chainer.config.in_recomputing
            return functions.batch_normalization_activation(
                x, self.gamma, self.beta, eps=self.eps,
                running_mean=None if in_recomputing else self.avg_mean,
                running_var=None if in_recomputing else self.avg_var,
                decay=self.decay, activation_name=activation)
        return functions.fixed_batch_normalization_activation(
            x, self.gamma, self.beta, self.avg_mean, self.avg_var, eps=self.eps, activation_name=activation)
