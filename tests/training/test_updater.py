import chainer
import numpy
import pytest

from chainer_dcgan import DCGANUpdater
from chainer_dcgan.datasets.iterators import ResumableIterator
from chainer_dcgan.training import make_optimizer, seeded_models


def _data(n=12, seed=0):
    rs = numpy.random.RandomState(seed)
    return [rs.uniform(-1, 1, (3, 96, 96)).astype(numpy.float32) for _ in range(n)]


def _updater(seed=0, batchsize=4):
    gen, dis = seeded_models(seed)
    opts = {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}
    return DCGANUpdater(ResumableIterator(_data(), batchsize, seed=seed), opts, device="@numpy", seed=seed)


def test_update_changes_both_models_and_reports_losses():
    updater = _updater()
    gen, dis = updater.generator, updater.discriminator
    before = {name: p.array.copy() for name, p in list(gen.namedparams()) + list(dis.namedparams())}
    observation = {}
    with chainer.reporter.Reporter().scope(observation):
        reporter = chainer.reporter.get_current_reporter()
        reporter.add_observer("gen", gen)
        reporter.add_observer("dis", dis)
        updater.update()
    assert set(observation) >= {"gen/loss", "dis/loss"}
    assert numpy.isfinite(float(observation["gen/loss"].array))
    # cross-entropies of 2 classes: positive, and D's is a sum of two terms
    assert 0 < float(observation["gen/loss"].array) < 10
    assert 0 < float(observation["dis/loss"].array) < 20
    changed = [n for n, p in list(gen.namedparams()) if not numpy.array_equal(before[n], p.array)]
    assert "/dc1/W" in changed and "/l0z/W" in changed
    assert not numpy.array_equal(before["/c0/W"], dis.c0.W.array)


def test_generator_update_uses_generator_loss_only():
    """G's step must follow d(gen/loss)/d(G): compare with a hand-made step from the same state."""
    updater = _updater(seed=1)
    gen = updater.generator
    w0 = gen.dc4.W.array.copy()
    updater.update()
    # Adam's first step moves each weight by about alpha * sign(grad) (plus weight decay),
    # so every changed entry moved by at most ~alpha.
    step = numpy.abs(gen.dc4.W.array - w0)
    assert step.max() < 2.1e-4 and step.mean() > 1e-5


def test_optimizer_hyperparameters_are_faithful():
    gen, _ = seeded_models(0)
    opt = make_optimizer(gen)
    assert (opt.alpha, opt.beta1, opt.beta2, opt.eps) == (2e-4, 0.5, 0.999, 1e-8)
    hooks = opt._hookable._pre_update_hooks
    assert hooks["WeightDecay"].rate == 1e-5


def test_flip_is_applied_to_real_batch():
    updater = _updater(seed=2)
    updater.random_state = numpy.random.RandomState(1)
    iterator = updater.get_iterator("main")
    order = iterator._state.order.copy()
    x = updater.real_batch()
    flips = numpy.random.RandomState(1).uniform(size=4) < 0.5
    raw = numpy.stack([_data()[i] for i in order[:4]])
    for i in range(4):
        expected = raw[i][..., ::-1] if flips[i] else raw[i]
        assert numpy.array_equal(x[i], expected), i
    assert flips.any() and not flips.all()


def test_bad_arguments_are_named():
    gen, dis = seeded_models(0)
    with pytest.raises(ValueError, match="optimizer"):
        DCGANUpdater(ResumableIterator(_data(), 4), {"gen": make_optimizer(gen)}, device="@numpy")
    with pytest.raises(ValueError, match="loss"):
        DCGANUpdater(ResumableIterator(_data(), 4), {"gen": make_optimizer(gen), "dis": make_optimizer(dis)},
                     device="@numpy", loss="wasserstein")


def test_hinge_loss_option_runs():
    gen, dis = seeded_models(0)
    updater = DCGANUpdater(ResumableIterator(_data(), 4), {"gen": make_optimizer(gen), "dis": make_optimizer(dis)},
                           device="@numpy", loss="hinge")
    updater.update()
    assert updater.iteration == 1


def test_diffaugment_reaches_d_and_g_trains_through_it():
    """With augment, D is fed the augmented batches (recorded here by wrapping D's call), G still
    gets a gradient through them, and the faithful updater (augment None) feeds D what G drew."""
    seen = {}
    for augment in (None, ("color", "translation", "cutout")):
        gen, dis = seeded_models(0)
        opts = {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}
        updater = DCGANUpdater(ResumableIterator(_data(), 4, seed=0), opts, device="@numpy", seed=0, augment=augment)
        inputs = []
        forward = dis.forward
        dis.forward = lambda x, *a: inputs.append(chainer.as_array(x).copy()) or forward(x, *a)
        w0 = gen.dc4.W.array.copy()
        updater.update()
        assert len(inputs) == 2 and not numpy.array_equal(w0, gen.dc4.W.array)
        seen[augment is not None] = inputs
    # the same fakes and reals either way (same seeds) until D's input: only augmentation differs them
    plain, augmented = seen[False], seen[True]
    for a, b in zip(plain, augmented):
        assert a.shape == b.shape and numpy.abs(a - b).max() > 0.1
    cut = (augmented[1] == 0).all(axis=1)  # cutout zeroes whole pixels of the real batch
    assert cut.reshape(4, -1).sum(1).min() > 0 and not (plain[1] == 0).all(axis=1).any()
    with pytest.raises(ValueError, match="rotate"):
        gen, dis = seeded_models(0)
        DCGANUpdater(ResumableIterator(_data(), 4), {"gen": make_optimizer(gen), "dis": make_optimizer(dis)},
                     device="@numpy", augment=("rotate",))


def test_each_loss_reaches_only_its_own_models_parameters():
    """The updater's chainer.grad gives G (and D) the gradients of Variable.backward(), and computes
    no weight gradients for D from G's loss."""
    from chainer_dcgan.training.updater import _grads
    gen, dis = seeded_models(3)
    z = gen.make_hidden(4, numpy.random.RandomState(0))
    x_real = numpy.random.RandomState(1).uniform(-1, 1, (4, 3, 96, 96)).astype(numpy.float32)
    label = numpy.zeros(4, dtype=numpy.int32)

    def loss_g():
        return chainer.functions.softmax_cross_entropy(dis(gen(z)), label)

    x_fake = gen(z).array  # D sees two batches, so each parameter's gradient sums two paths

    def loss_d():
        return (chainer.functions.softmax_cross_entropy(dis(x_fake), label)
                + chainer.functions.softmax_cross_entropy(dis(x_real), label + 1))

    gen.cleargrads()
    dis.cleargrads()
    loss_g().backward()
    want_g = {name: p.grad.copy() for name, p in gen.namedparams()}
    assert all(p.grad is not None for p in dis.params())  # backward() fills D's too
    gen.cleargrads()
    dis.cleargrads()
    _grads(loss_g(), gen)
    for name, p in gen.namedparams():
        numpy.testing.assert_allclose(p.grad, want_g[name], rtol=1e-5, atol=1e-7 * numpy.abs(want_g[name]).max())
    assert all(p.grad is None for p in dis.params())

    dis.cleargrads()
    loss_d().backward()
    want_d = {name: p.grad.copy() for name, p in dis.namedparams()}
    dis.cleargrads()
    _grads(loss_d(), dis)
    for name, p in dis.namedparams():
        numpy.testing.assert_allclose(p.grad, want_d[name], rtol=1e-5, atol=1e-7 * numpy.abs(want_d[name]).max())


@pytest.mark.parametrize("kernels", [True, False])
def test_fused_adam_is_chainers_adam(kernels, monkeypatch):
    """make_optimizer's Adam takes the same steps as chainer.optimizers.Adam (with the WeightDecay
    hook) and keeps the same state under the same names."""
    from chainer_dcgan.functions import _kernels
    from chainer_dcgan.training.optimizers import FusedAdamRule
    calls = []
    real = _kernels.adam_update
    monkeypatch.setattr(_kernels, "adam_update", lambda *a: calls.append(1) or real(*a))
    rs = numpy.random.RandomState(0)
    w0 = rs.normal(size=(64, 33)).astype(numpy.float32)
    grads = [rs.normal(size=w0.shape).astype(numpy.float32) for _ in range(3)]
    links = []
    for make in (make_optimizer, None):
        link = chainer.links.Linear(33, 64, initialW=w0, nobias=True)
        if make is None:
            opt = chainer.optimizers.Adam(alpha=2e-4, beta1=0.5)
            opt.setup(link)
            opt.add_hook(chainer.optimizer_hooks.WeightDecay(1e-5))
        else:
            opt = make(link)
            assert isinstance(link.W.update_rule, FusedAdamRule)
        with chainer.using_config("dcgan_kernels", kernels):
            for g in grads:
                link.W.grad = g.copy()
                opt.update()
        links.append((link, opt))
    (fused, fused_opt), (plain, plain_opt) = links
    numpy.testing.assert_allclose(fused.W.array, plain.W.array, rtol=1e-6, atol=1e-9)
    assert not numpy.array_equal(fused.W.array, w0)
    for key in ("m", "v"):
        numpy.testing.assert_allclose(fused.W.update_rule.state[key], plain.W.update_rule.state[key],
                                      rtol=1e-6, atol=1e-12)
    assert fused.W.update_rule.t == plain.W.update_rule.t == 3
    assert len(calls) == (3 if kernels else 0)
