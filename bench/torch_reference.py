"""The faithful DCGAN written in PyTorch, for benchmarking only (never imported by the library).

Same architecture, initial weight distribution, loss and optimizer as :mod:`chainer_dcgan.models`
and :class:`chainer_dcgan.training.updater.DCGANUpdater`, and the same work per iteration: one forward pass
of G and of D on fake and real feeds both losses; G's loss is backpropagated through D to G's
parameters alone (no weight gradients of D, as the Chainer updater's ``chainer.grad``), G steps,
then D's loss is backpropagated into D's parameters alone and D steps. Adam(2e-4, 0.5, 0.999, 1e-8)
with L2 weight decay 1e-5 added to the gradient (Chainer's ``WeightDecay`` hook), BatchNorm eps 1e-5 and momentum 0.1.
"""
import numpy
import torch
import torch.nn as nn
import torch.nn.functional as F

from chainer_dcgan.models import hparams
from chainer_dcgan.models.faithful import architecture


def _init(module):
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.ConvTranspose2d, nn.Linear)):
            nn.init.normal_(m.weight, 0.0, hparams.INIT_STD)
            nn.init.zeros_(m.bias)


def _bn(n, dims=2):
    cls = nn.BatchNorm2d if dims == 2 else nn.BatchNorm1d
    return cls(n, eps=hparams.BN_EPS, momentum=1.0 - hparams.BN_DECAY)


class TorchGenerator(nn.Module):
    """z ``(N, 100)`` -> ``(N, 3, size, size)``, no output activation (as the faithful Generator).

    The layout of :func:`chainer_dcgan.models.faithful.architecture` at every size.
    """

    def __init__(self, z_dim=hparams.Z_DIM, size=hparams.IMAGE_SIZE):
        super().__init__()
        self.base, c, _ = architecture(size)
        s = self.base
        k, st, p = hparams.KSIZE, hparams.STRIDE, hparams.PAD
        self.l0z = nn.Linear(z_dim, s * s * c[0])
        self.bn0l = _bn(s * s * c[0], dims=1)
        self.dc = nn.ModuleList(nn.ConvTranspose2d(c[i], c[i + 1], k, st, p) for i in range(len(c) - 1))
        self.bn = nn.ModuleList(_bn(c[i + 1]) for i in range(len(c) - 2))
        _init(self)

    def forward(self, z):
        s = self.base
        h = F.relu(self.bn0l(self.l0z(z))).view(z.shape[0], -1, s, s)
        for dc, bn in zip(self.dc[:-1], self.bn):
            h = F.relu(bn(dc(h)))
        return self.dc[-1](h)


class TorchDiscriminator(nn.Module):
    """``(N, 3, size, size)`` -> logits ``(N, 2)``, ELU after every convolution."""

    def __init__(self, size=hparams.IMAGE_SIZE):
        super().__init__()
        s, _, c = architecture(size)
        k, st, p = hparams.KSIZE, hparams.STRIDE, hparams.PAD
        self.c = nn.ModuleList(nn.Conv2d(c[i], c[i + 1], k, st, p) for i in range(len(c) - 1))
        self.bn = nn.ModuleList(_bn(c[i + 1]) for i in range(1, len(c) - 1))
        self.l4l = nn.Linear(s * s * c[-1], 2)  # the faithful name at every size
        _init(self)

    def forward(self, x):
        h = F.elu(self.c[0](x))
        for conv, bn in zip(self.c[1:], self.bn):
            h = F.elu(bn(conv(h)))
        return self.l4l(h.flatten(1))


def make_optimizer(module):
    return torch.optim.Adam(module.parameters(), lr=hparams.ADAM_ALPHA,
                            betas=(hparams.ADAM_BETA1, hparams.ADAM_BETA2), eps=hparams.ADAM_EPS,
                            weight_decay=hparams.WEIGHT_DECAY)


class TorchStep:
    """One faithful training iteration on a fixed real batch, like ``DCGANUpdater.update_core``.

    Args:
        batch (numpy.ndarray): float32 ``(N, 3, S, S)`` real images in [-1, 1]; ``S`` (64, 96, 128 or
            256) is the models' size.
        device (str): ``"cpu"`` or ``"cuda:0"``.
        seed (int): seeds the weights, z and the flips.
        compile (bool): run G and D through ``torch.compile`` (compiled on the first calls).
    """

    def __init__(self, batch, device="cpu", seed=0, compile=False):
        torch.manual_seed(seed)
        self.device = torch.device(device)
        size = batch.shape[-1]
        self.gen = TorchGenerator(size=size).to(self.device)
        self.dis = TorchDiscriminator(size=size).to(self.device)
        self.opt_gen = make_optimizer(self.gen)
        self.opt_dis = make_optimizer(self.dis)
        if compile:  # the modules' forward (and their backward) through torch.compile; the optimizers stay eager
            self.gen = torch.compile(self.gen)
            self.dis = torch.compile(self.dis)
        self.real = torch.from_numpy(batch).to(self.device)
        self.random_state = numpy.random.RandomState(seed)
        n = len(batch)
        self.label_real = torch.full((n,), hparams.REAL_LABEL, dtype=torch.long, device=self.device)
        self.label_fake = torch.full((n,), hparams.FAKE_LABEL, dtype=torch.long, device=self.device)

    def __call__(self):
        n = len(self.real)
        flips = torch.from_numpy(self.random_state.uniform(size=n) < hparams.FLIP_PROBABILITY).to(self.device)
        x_real = torch.where(flips.view(n, 1, 1, 1), self.real.flip(3), self.real)
        z = torch.from_numpy(self.random_state.uniform(hparams.Z_LOW, hparams.Z_HIGH, (n, hparams.Z_DIM))
                             .astype(numpy.float32)).to(self.device)
        x_fake = self.gen(z)
        y_fake = self.dis(x_fake)
        y_real = self.dis(x_real)

        self.opt_gen.zero_grad(set_to_none=False)
        self.opt_dis.zero_grad(set_to_none=False)
        loss_gen = F.cross_entropy(y_fake, self.label_real)
        loss_gen.backward(retain_graph=True, inputs=list(self.gen.parameters()))
        self.opt_gen.step()

        self.opt_dis.zero_grad(set_to_none=False)
        loss_dis = F.cross_entropy(y_fake, self.label_fake) + F.cross_entropy(y_real, self.label_real)
        loss_dis.backward(inputs=list(self.dis.parameters()))
        self.opt_dis.step()
        return loss_gen.detach().item(), loss_dis.detach().item()

    def generate(self, z):
        """Generator-only inference (eval mode, no autograd): z numpy ``(N, 100)`` -> numpy images."""
        self.gen.eval()
        try:
            with torch.no_grad():
                return self.gen(torch.from_numpy(z).to(self.device)).cpu().numpy()
        finally:
            self.gen.train()
