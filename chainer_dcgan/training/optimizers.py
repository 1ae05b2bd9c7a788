"""Adam with its CPU update as one fused loop (:func:`chainer_dcgan.functions._kernels.adam_update`).

``chainer.optimizers.Adam`` updates each parameter on the CPU with about ten NumPy passes over it
and its two moments; the fused loop does the same arithmetic in one pass, split over the cores. The
hyperparameters, the state (``m``, ``v``, ``t``) and so the snapshots are Chainer's own; AMSGrad,
AdaBound, float16 parameters, GPUs and ``CHAINER_DCGAN_KERNELS=0`` take Chainer's code.
"""
import chainer
from chainer.optimizers.adam import AdamRule

from chainer_dcgan.functions import _kernels


class FusedAdamRule(AdamRule):
    """:class:`chainer.optimizers.adam.AdamRule` whose CPU update is one loop where it can be."""

    def update_core_cpu(self, param):
        grad = param.grad
        hp = self.hyperparam
        if grad is None or hp.amsgrad or hp.adabound:
            return super().update_core_cpu(param)
        data, m, v = param.data, self.state["m"], self.state["v"]
        if not (_kernels.active(data, grad, m, v, train_only=False)
                and data.dtype == grad.dtype == m.dtype == v.dtype
                and data.flags.c_contiguous and m.flags.c_contiguous and v.flags.c_contiguous):
            return super().update_core_cpu(param)
        self._check_eps(data.dtype.type)
        _kernels.adam_update(data, grad, m, v, 1.0 - hp.beta1, 1.0 - hp.beta2, self.alpha_t, hp.eps, hp.eta,
                             1.0 - hp.eta * hp.weight_decay_rate)


class Adam(chainer.optimizers.Adam):
    """``chainer.optimizers.Adam`` (same arguments, state and serialization) with :class:`FusedAdamRule`."""

    def create_update_rule(self):
        return FusedAdamRule(self.hyperparam)


__all__ = ["Adam", "FusedAdamRule"]
