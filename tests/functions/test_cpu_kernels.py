"""The CPU fast path's compiled loops (:mod:`chainer_dcgan.functions._kernels`) and its direct BLAS
calls (:mod:`chainer_dcgan.functions._blas`) against the NumPy code they replace.

Each loop is run through its caller (:mod:`.stride2_conv`, :mod:`.batch_norm_act`) in training mode
with ``chainer.config.dcgan_kernels`` on and off; a spy on the ``_kernels`` entry points makes sure
the "on" run really went through the loops (a test comparing NumPy with NumPy passes vacuously).
"""
import os
import subprocess
import sys

import chainer
import numpy
import pytest

from chainer_dcgan.functions import _blas, _kernels, stride2_conv  # noqa: E402
from chainer_dcgan.functions.batch_norm_act import ELU, AffineActivation, BatchNormalizationActivation  # noqa: E402

REPO = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
DTYPES = [numpy.float32, numpy.float64]
ACTIVATIONS = [None, "relu", "elu", "leaky_relu"]
#: the loops (sums and arithmetic in float64) against NumPy (in the arrays' dtype); measured
#: differences in test_bn_act_matches_numpy
TOL = {numpy.float32: dict(rtol=1e-5, atol=1e-6), numpy.float64: dict(rtol=1e-12, atol=1e-13)}


def _mode(kernels):
    """Training mode with the compiled loops on or off."""
    return chainer.using_config("train", True), chainer.using_config("dcgan_kernels", kernels)


def _call(fn, kernels):
    train, switch = _mode(kernels)
    with train, switch:
        return fn()


@pytest.fixture
def spy(monkeypatch):
    """Counts the calls of each ``_kernels`` entry point the callers use."""
    calls = {}
    for name in ("reorder_weight", "restore_weight", "space_to_depth", "depth_to_space", "to_grid", "from_grid",
                 "add_into", "bn_act_forward", "bn_act_backward", "affine_act_backward", "elu_forward",
                 "elu_backward", "im2col", "col2im", "wino_input", "wino_input_adjoint", "wino_output",
                 "wino_output_adjoint", "wino_weight", "wino_weight_grad"):
        if not hasattr(_kernels, name):  # (reorder_weight, restore_weight: newer)
            continue

        def wrapper(*args, _name=name, _fn=getattr(_kernels, name), **kwargs):
            calls[_name] = calls.get(_name, 0) + 1
            return _fn(*args, **kwargs)
        monkeypatch.setattr(_kernels, name, wrapper)
    return calls


# -- layout changes: copies, so exactly equal --------------------------------------------------------

@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 6, 6), (3, 5, 2, 2), (2, 3, 4, 8)])
def test_space_to_depth_and_back(spy, dtype, shape):
    rng = numpy.random.default_rng(1)
    N, C, H, W = shape
    x = rng.standard_normal(shape).astype(dtype)
    xt = numpy.ascontiguousarray(x.transpose(0, 1, 3, 2)).transpose(0, 1, 3, 2)  # not C-contiguous
    bias = rng.standard_normal(C).astype(dtype)
    for inp in (x, xt):
        on = _call(lambda: stride2_conv.space_to_depth(inp), True)
        off = _call(lambda: stride2_conv.space_to_depth(inp), False)
        assert on.shape == off.shape == (4 * C, N * (H // 2 + 1) * (W // 2 + 1)) and on.dtype == dtype
        numpy.testing.assert_array_equal(on, off)
    Z = rng.standard_normal(on.shape).astype(dtype)
    for b in (None, bias):
        on = _call(lambda: stride2_conv.depth_to_space(Z, shape, b), True)
        off = _call(lambda: stride2_conv.depth_to_space(Z, shape, b), False)
        assert on.shape == shape and on.dtype == dtype
        numpy.testing.assert_array_equal(on, off)
    # the round trip drops the padding again
    z = _call(lambda: stride2_conv.space_to_depth(x), True)
    numpy.testing.assert_array_equal(_call(lambda: stride2_conv.depth_to_space(z, shape), True), x)
    assert spy.get("space_to_depth") == 3 and spy.get("depth_to_space") == 3


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(3, 5, 3, 3), (3, 5, 1, 1), (2, 4, 2, 5)])
def test_to_grid_and_back(spy, dtype, shape):
    rng = numpy.random.default_rng(2)
    N, C, h, w = shape
    y = rng.standard_normal(shape).astype(dtype)
    on = _call(lambda: stride2_conv.to_grid(y), True)
    off = _call(lambda: stride2_conv.to_grid(y), False)
    assert on.shape == off.shape == (C, N * (h + 1) * (w + 1)) and on.dtype == dtype
    numpy.testing.assert_array_equal(on, off)
    Y = rng.standard_normal(on.shape).astype(dtype)
    for b in (None, rng.standard_normal(C).astype(dtype)):
        on = _call(lambda: stride2_conv.from_grid(Y, shape, b), True)
        off = _call(lambda: stride2_conv.from_grid(Y, shape, b), False)
        assert on.shape == shape and on.dtype == dtype and on.flags.c_contiguous
        numpy.testing.assert_array_equal(on, off)
    assert spy.get("to_grid") == 1 and spy.get("from_grid") == 2


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("shape", [(5, 3, 4, 4), (1, 1, 4, 4), (6, 7, 4, 4)])
def test_reorder_and_restore_weight(spy, dtype, shape):
    rng = numpy.random.default_rng(10)
    W = rng.standard_normal(shape).astype(dtype)
    on = _call(lambda: stride2_conv.reorder_weight(W), True)
    off = _call(lambda: stride2_conv.reorder_weight(W), False)
    assert on.shape == (4, shape[0], 4 * shape[1]) and on.dtype == dtype
    numpy.testing.assert_array_equal(on, off)
    Wr = rng.standard_normal(on.shape).astype(dtype)
    on = _call(lambda: stride2_conv.restore_weight(Wr), True)
    off = _call(lambda: stride2_conv.restore_weight(Wr), False)
    assert on.shape == shape and on.dtype == dtype
    numpy.testing.assert_array_equal(on, off)
    numpy.testing.assert_array_equal(_call(lambda: stride2_conv.restore_weight(
        stride2_conv.reorder_weight(W)), True), W)
    if hasattr(_kernels, "reorder_weight"):
        assert spy.get("reorder_weight") == 2 and spy.get("restore_weight") == 2


# -- the shifted products (add_into where BLAS does not add in place) ----------------------------------

def _gather_ref(Wr, Z, M, gw):
    Y = numpy.zeros((Wr.shape[1], Z.shape[1]))
    for a, off in enumerate((0, 1, gw, gw + 1)):
        Y[:, :M] += Wr[a].astype(numpy.float64) @ Z[:, off:off + M]
    return Y


def _scatter_ref(Wr, Y, M, gw):
    Z = numpy.zeros((Wr.shape[2], Y.shape[1]))
    for a, off in enumerate((0, 1, gw, gw + 1)):
        Z[:, off:off + M] += Wr[a].T.astype(numpy.float64) @ Y[:, :M]
    return Z


@pytest.mark.parametrize("blas", [True, False], ids=["blas", "noblas"])
@pytest.mark.parametrize("B", [3, 4, 6], ids=lambda b: "B{}".format(b))  # stacked taps (B <= 4) or four products
def test_gather_scatter(monkeypatch, spy, blas, B):
    if not blas:  # as where NumPy's BLAS is not found: each product then goes through _add
        monkeypatch.setattr(stride2_conv._blas, "gemm", lambda *args, **kwargs: False)
    rng = numpy.random.default_rng(3)
    n, h, w, A = 3, 3, 4, 5
    gh, gw = h + 1, w + 1
    M = stride2_conv._span(n, gh, gw)
    Wr = rng.standard_normal((4, A, 4 * B)).astype(numpy.float32)
    Z = rng.standard_normal((4 * B, n * gh * gw)).astype(numpy.float32)
    Y = rng.standard_normal((A, n * gh * gw)).astype(numpy.float32)
    for fn, ref in ((lambda: stride2_conv.gather(Wr, Z, n, gh, gw), _gather_ref(Wr, Z, M, gw)),
                    (lambda: stride2_conv.scatter(Wr, Y, n, gh, gw), _scatter_ref(Wr, Y, M, gw))):
        on, off = _call(fn, True), _call(fn, False)
        assert on.dtype == off.dtype == numpy.float32 and on.shape == off.shape == ref.shape
        numpy.testing.assert_allclose(on, off, rtol=1e-5, atol=1e-5)
        numpy.testing.assert_allclose(on, ref, rtol=1e-5, atol=1e-5)
    # scatter's stacked branch always adds its taps with add_into; the four-product branches only without BLAS
    assert spy.get("add_into", 0) == (4 if B <= 4 else 0) + (0 if blas or B <= 4 else 6)


# -- BatchNormalization + activation, the affine (test-mode) variant, ELU -----------------------------

def _bn(x, gamma, beta, gy, activation, kernels):
    C = x.shape[1]
    rm, rv = numpy.full(C, 0.1, x.dtype), numpy.full(C, 1.5, x.dtype)
    train, switch = _mode(kernels)
    with train, switch:
        xv, gv, bv = (chainer.Variable(a.copy()) for a in (x, gamma, beta))
        y = BatchNormalizationActivation(2e-5, rm, rv, 0.9, activation).apply((xv, gv, bv))[0]
        y.grad = gy.copy()
        y.backward()
    return {"y": y.array, "running_mean": rm, "running_var": rv, "gx": xv.grad, "ggamma": gv.grad,
            "gbeta": bv.grad}


def _bn_inputs(shape, dtype, seed=4):
    rng = numpy.random.default_rng(seed)
    C = shape[1]
    x = rng.normal(0.5, 2.0, shape).astype(dtype)
    gamma = rng.uniform(0.5, 1.5, C).astype(dtype)
    beta = rng.normal(0.0, 0.5, C).astype(dtype)
    gy = rng.standard_normal(shape).astype(dtype)
    return x, gamma, beta, gy


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(16, 5), (3, 5, 6, 6)])
def test_bn_act_matches_numpy(spy, dtype, activation, shape):
    # Measured max. differences: float32 y 2.7e-7 and gx 3.6e-7 absolute (values of order 1), ggamma
    # 2.9e-6 absolute / 2.1e-6 relative, gbeta 1.2e-6 relative, running statistics 1.2e-7; float64
    # y and gx 3e-15 absolute, ggamma 1.1e-14 relative.
    args = _bn_inputs(shape, dtype)
    on, off = _bn(*args, activation, True), _bn(*args, activation, False)
    assert spy.get("bn_act_forward") == 1 and spy.get("bn_act_backward") == 1
    for key in on:
        assert on[key].dtype == dtype and on[key].shape == off[key].shape, key
        numpy.testing.assert_allclose(on[key], off[key], err_msg=key, **TOL[dtype])


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("activation", ACTIVATIONS)
@pytest.mark.parametrize("shape", [(16, 5), (3, 5, 6, 6)])
def test_affine_act_backward_matches_numpy(spy, dtype, activation, shape):
    x, scale, shift, gy = _bn_inputs(shape, dtype, seed=5)
    x -= 0.5  # around zero, so that each activation sees both sides

    def run():
        xv, sv, tv = (chainer.Variable(a.copy()) for a in (x, scale, shift))
        y = AffineActivation(activation).apply((xv, sv, tv))[0]
        y.grad = gy.copy()
        y.backward()
        return y.array, xv.grad, sv.grad, tv.grad

    on, off = _call(run, True), _call(run, False)
    assert spy.get("affine_act_backward") == 1
    for name, a, b in zip(("y", "gx", "gscale", "gshift"), on, off):
        assert a.dtype == dtype, name
        numpy.testing.assert_allclose(a, b, err_msg=name, **TOL[dtype])


ELU_EDGES = [-100.0, -20.0, -17.5, -17.0, -5.0, -1.0, -1e-3, -1e-8, -1e-30, 0.0, 1e-45, 1e-30, 1e-8, 0.5, 3.0]


@pytest.mark.parametrize("dtype", DTYPES)
def test_elu_matches_numpy_and_expm1(spy, dtype):
    rng = numpy.random.default_rng(6)
    x = numpy.concatenate([numpy.array(ELU_EDGES), rng.normal(0.0, 3.0, 6 * 7 * 5 - len(ELU_EDGES))])
    x = x.astype(dtype).reshape(6, 7, 5)
    gy = rng.standard_normal(x.shape).astype(dtype)

    def run():
        xv = chainer.Variable(x.copy())
        y = ELU().apply((xv,))[0]
        y.grad = gy.copy()
        y.backward()
        return y.array, xv.grad

    (y_on, gx_on), (y_off, gx_off) = _call(run, True), _call(run, False)
    assert spy.get("elu_forward") == 1 and spy.get("elu_backward") == 1
    assert y_on.dtype == gx_on.dtype == dtype
    x64 = x.astype(numpy.float64)
    exact = numpy.where(x64 > 0, x64, numpy.expm1(numpy.minimum(x64, 0)))
    # both paths stay within 2e-7 of expm1 in float32 (NumPy's exp(t) - 1 is within 1.2e-7; the loops'
    # polynomial is about 1e-9 relative, and saturates at exp(-17) = 4.1e-8: see the test below)
    # (in float64 the loops are within 1e-15 for x >= -17, but only 4.1e-8 below: the bound here)
    err = 2e-7 if dtype == numpy.float32 else 5e-8
    numpy.testing.assert_allclose(y_on, exact, rtol=0, atol=err)
    numpy.testing.assert_allclose(y_off, exact, rtol=0, atol=err)
    numpy.testing.assert_allclose(y_on, y_off, rtol=0, atol=err)
    assert numpy.all(y_on[x > 0] == x[x > 0])
    assert numpy.all(y_on[x == 0] == 0) and numpy.all(y_on >= -1)
    # the derivative read from y: min(y + 1, 1) * gy, so as close as the outputs
    numpy.testing.assert_allclose(gx_on, gx_off, rtol=0, atol=4 * err * numpy.abs(gy).max())
    numpy.testing.assert_allclose(gx_on, gy * numpy.where(x64 > 0, 1, numpy.exp(numpy.minimum(x64, 0))),
                                  rtol=0, atol=4 * err * numpy.abs(gy).max())


@pytest.mark.parametrize("dtype", DTYPES)
def test_elu_saturates_to_minus_one(dtype):
    # exp(-17) = 4.1e-8 is more than half a float32 ulp below 1: -17.5 and below round to -1, -17 not
    x = numpy.array([[-1e30, -200.0, -100.0, -40.0, -20.0, -18.0, -17.5, -17.0]], dtype=dtype)
    y = _call(lambda: ELU().apply((x,))[0].array, True)
    y_numpy = _call(lambda: ELU().apply((x,))[0].array, False)
    exact = numpy.expm1(x.astype(numpy.float64)).astype(dtype)  # float32: -1 for all; float64: below -37.4
    if dtype == numpy.float32:
        numpy.testing.assert_array_equal(y_numpy[0, :-1], -1)  # NumPy's path does give -1
        numpy.testing.assert_array_equal(y, exact)
        assert y[0, -1] > -1
    else:
        numpy.testing.assert_allclose(y, exact, rtol=0, atol=1e-15)


# -- independent of the thread count ------------------------------------------------------------------

_THREAD_SCRIPT = r"""
import sys
from concurrent.futures import ThreadPoolExecutor
import chainer_dcgan  # noqa: F401
import chainer
import numpy
from chainer_dcgan.functions import _kernels
from chainer_dcgan.functions.batch_norm_act import ELU, BatchNormalizationActivation

path, threads = sys.argv[1], int(sys.argv[2])
submitted = []
_submit = ThreadPoolExecutor.submit
ThreadPoolExecutor.submit = lambda self, *a, **k: submitted.append(1) or _submit(self, *a, **k)
rng = numpy.random.default_rng(11)
shape = (8, 7, 32, 32)  # large enough to be split (_kernels.SERIAL_BELOW)
x = rng.normal(0.5, 2.0, shape).astype(numpy.float32)
gamma = rng.uniform(0.5, 1.5, 7).astype(numpy.float32)
beta = rng.normal(0.0, 0.5, 7).astype(numpy.float32)
gy = rng.standard_normal(shape).astype(numpy.float32)
rm, rv = numpy.zeros(7, numpy.float32), numpy.ones(7, numpy.float32)
out = {}
with chainer.using_config("train", True), chainer.using_config("dcgan_kernels", True):
    assert _kernels.active(x, gamma, beta)
    xv, gv, bv = chainer.Variable(x), chainer.Variable(gamma), chainer.Variable(beta)
    y = BatchNormalizationActivation(2e-5, rm, rv, 0.9, "elu").apply((xv, gv, bv))[0]
    y.grad = gy
    y.backward()
    ev = chainer.Variable(x.reshape(8, -1))
    e = ELU().apply((ev,))[0]
    e.grad = gy.reshape(8, -1)
    e.backward()
assert _kernels._STATE["threads"] == threads, _kernels._STATE["threads"]
assert bool(submitted) == (threads > 1), len(submitted)  # with 2 threads, the loops were split
numpy.savez(path, y=y.array, rm=rm, rv=rv, gx=xv.grad, ggamma=gv.grad, gbeta=bv.grad, elu=e.array, gelu=ev.grad)
"""


def test_results_do_not_depend_on_threads(tmp_path):
    results = []
    for threads in (1, 2):
        path = str(tmp_path / "threads{}.npz".format(threads))
        # NUMBA_NUM_THREADS caps the count: 2 even on a one-core machine
        env = dict(os.environ, CHAINER_DCGAN_THREADS=str(threads), NUMBA_NUM_THREADS="2",
                   OPENBLAS_NUM_THREADS="1", CHAINER_DCGAN_KERNELS="1")
        proc = subprocess.run([sys.executable, "-c", _THREAD_SCRIPT, path, str(threads)], cwd=REPO, env=env,
                              capture_output=True, text=True, timeout=120)
        assert proc.returncode == 0, proc.stderr[-3000:]
        with numpy.load(path) as f:
            results.append({k: f[k] for k in f.files})
    one, two = results
    assert sorted(one) == sorted(two) and len(one) == 8
    for key in one:
        assert one[key].tobytes() == two[key].tobytes(), key


# -- when the loops serve ------------------------------------------------------------------------------

class _Sub(numpy.ndarray):
    pass


def test_active():
    a = numpy.zeros((2, 3), numpy.float32)
    with chainer.using_config("train", True):
        with chainer.using_config("dcgan_kernels", True):
            assert _kernels.active(a, a.astype(numpy.float64))
            assert not _kernels.active(a, a.astype(numpy.float16))
            assert not _kernels.active(a.astype(numpy.float16))
            assert not _kernels.active(a.astype(numpy.int32))
            assert not _kernels.active(a.view(_Sub))  # CuPy-like: not exactly numpy.ndarray
            assert not _kernels.active([1.0, 2.0])
            assert not _kernels.active(a, [1.0])
        with chainer.using_config("dcgan_kernels", False):
            assert not _kernels.active(a)
    with chainer.using_config("train", False), chainer.using_config("dcgan_kernels", True):
        assert not _kernels.active(a)


@pytest.mark.parametrize("value, expected", [(None, True), ("1", True), ("0", False), ("off", False),
                                             (" False ", False), ("no", False), ("yes", True)])
def test_active_env_default(monkeypatch, value, expected):
    if value is None:
        monkeypatch.delenv("CHAINER_DCGAN_KERNELS", raising=False)
    else:
        monkeypatch.setenv("CHAINER_DCGAN_KERNELS", value)
    a = numpy.zeros(3, numpy.float32)
    assert _kernels.kernels_default() is expected
    with chainer.using_config("train", True):
        assert _kernels.active(a) is expected  # config.dcgan_kernels unset: the environment decides
        with chainer.using_config("dcgan_kernels", not expected):
            assert _kernels.active(a) is (not expected)


def test_thread_count(monkeypatch):
    monkeypatch.setattr(_kernels._numba().config, "NUMBA_NUM_THREADS", 8)
    for var in ("CHAINER_DCGAN_THREADS", "OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS"):
        monkeypatch.delenv(var, raising=False)
    assert _kernels.thread_count() == 8
    monkeypatch.setenv("OPENBLAS_NUM_THREADS", "3")
    assert _kernels.thread_count() == 3
    monkeypatch.setenv("OMP_NUM_THREADS", "2")
    assert _kernels.thread_count() == 2
    monkeypatch.setenv("CHAINER_DCGAN_THREADS", " 5 ")
    assert _kernels.thread_count() == 5
    monkeypatch.setenv("CHAINER_DCGAN_THREADS", "100")
    assert _kernels.thread_count() == 8  # at most numba's thread count
    for bad in ("0", "-1", "two", ""):  # ignored: the next variable decides
        monkeypatch.setenv("CHAINER_DCGAN_THREADS", bad)
        assert _kernels.thread_count() == 2
    monkeypatch.setenv("OMP_NUM_THREADS", "0")
    assert _kernels.thread_count() == 3


# -- gemm through NumPy's OpenBLAS ----------------------------------------------------------------------

@pytest.fixture
def blas():
    if _blas.library() is None:
        pytest.skip("no OpenBLAS with a known cblas flavour beside NumPy (another NumPy build)")
    return _blas


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_into_window(blas, dtype):
    rng = numpy.random.default_rng(7)
    m, k, n, width, off = 5, 7, 9, 20, 6
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    wide = rng.standard_normal((m, width)).astype(dtype)
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == numpy.float32 else dict(rtol=1e-13, atol=1e-14)
    for accumulate in (True, False):
        out = wide.copy()
        assert blas.gemm(a, b, out[:, off:off + n], accumulate) is True
        expected = wide.copy()
        if accumulate:
            expected[:, off:off + n] += a @ b
        else:
            expected[:, off:off + n] = a @ b
        numpy.testing.assert_allclose(out[:, off:off + n], expected[:, off:off + n], **tol)
        numpy.testing.assert_array_equal(out[:, :off], wide[:, :off])
        numpy.testing.assert_array_equal(out[:, off + n:], wide[:, off + n:])


@pytest.mark.parametrize("dtype", DTYPES)
def test_gemm_transposed_operands(blas, dtype):
    rng = numpy.random.default_rng(8)
    m, k, n, off = 4, 6, 11, 3
    at = rng.standard_normal((k, m)).astype(dtype)  # a = at.T: column-major
    bwide = rng.standard_normal((n, k + 8)).astype(dtype)  # b = bwide[:, window].T: column-major, ld k + 8
    a, b = at.T, bwide[:, off:off + k].T
    tol = dict(rtol=1e-5, atol=1e-6) if dtype == numpy.float32 else dict(rtol=1e-13, atol=1e-14)
    for aa, bb in ((a, b), (a, numpy.ascontiguousarray(b)), (numpy.ascontiguousarray(a), b)):
        out = numpy.full((m, n), 0.25, dtype)
        assert blas.gemm(aa, bb, out, accumulate=True) is True
        numpy.testing.assert_allclose(out, 0.25 + a.astype(numpy.float64) @ b, **tol)


def test_gemm_refuses(blas):
    rng = numpy.random.default_rng(9)
    a = rng.standard_normal((4, 6)).astype(numpy.float32)
    b = rng.standard_normal((6, 5)).astype(numpy.float32)
    readonly = numpy.zeros((4, 5), numpy.float32)
    readonly.flags.writeable = False
    big = rng.standard_normal((8, 12)).astype(numpy.float32)
    cases = {
        "float16": (a.astype(numpy.float16), b.astype(numpy.float16), numpy.zeros((4, 5), numpy.float16)),
        "int": (a.astype(numpy.int32), b.astype(numpy.int32), numpy.zeros((4, 5), numpy.int32)),
        "mixed dtypes": (a.astype(numpy.float64), b, numpy.zeros((4, 5), numpy.float32)),
        "strided both ways": (big[::2, ::2], b, numpy.zeros((4, 5), numpy.float32)),
        "strided out": (a, b, numpy.zeros((4, 10), numpy.float32)[:, ::2]),
        "transposed out": (a, b, numpy.zeros((5, 4), numpy.float32).T),
        "inner mismatch": (a, b[:5], numpy.zeros((4, 5), numpy.float32)),
        "out mismatch": (a, b, numpy.zeros((4, 6), numpy.float32)),
        "1-d": (a, b[:, 0], numpy.zeros(4, numpy.float32)),
        "empty": (a[:, :0], b[:0], numpy.zeros((4, 5), numpy.float32)),
        "subclass": (a.view(_Sub), b, numpy.zeros((4, 5), numpy.float32)),
        "read-only out": (a, b, readonly),
    }
    for name, (x, y, out) in cases.items():
        before = out.copy()
        for accumulate in (False, True):
            assert blas.gemm(x, y, out, accumulate) is False, name
            numpy.testing.assert_array_equal(out, before, err_msg=name)
    assert blas.gemm([[1.0]], [[1.0]], numpy.zeros((1, 1), numpy.float32)) is False


# -- products split over the loops' pool in a CPU training process ---------------------------------

SPLIT_CHECK = r"""
import numpy
from chainer_dcgan.functions import _blas
from chainer_dcgan.models import Discriminator, Generator
from chainer_dcgan.training import make_optimizer
from chainer_dcgan.training.updater import DCGANUpdater

get = _blas._openblas_function("get")
threads_before = get()
gen, dis = Generator(size=64), Discriminator(size=64)
data = list(numpy.zeros((2, 3, 64, 64), numpy.float32))
import chainer
it = chainer.iterators.SerialIterator(data, 2)
DCGANUpdater(it, {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}, device=chainer.get_device("@numpy"))
print("threads", threads_before, get())
print("library", _blas.library())
submitted = []
pool = _blas._pool()
if pool is not None:
    real = pool.submit
    pool.submit = lambda fn, job: submitted.append(tuple((lo, hi) for _, lo, hi in job)) or real(fn, job)
rng = numpy.random.default_rng(3)
worst = 0.0
for m, k, n in ((300, 70, 40), (40, 70, 300), (5, 7, 9)):
    a = rng.standard_normal((m, k)).astype(numpy.float32)
    b = rng.standard_normal((k, n)).astype(numpy.float32)
    for aa in (a, numpy.ascontiguousarray(a.T).T):
        for bb in (b, numpy.ascontiguousarray(b.T).T):
            wide = rng.standard_normal((m, n + 6)).astype(numpy.float32)
            out = wide.copy()
            assert _blas.gemm(aa, bb, out[:, 3:3 + n], accumulate=True)
            assert (out[:, :3] == wide[:, :3]).all() and (out[:, 3 + n:] == wide[:, 3 + n:]).all()
            ref = wide[:, 3:3 + n] + a.astype(numpy.float64) @ b
            worst = max(worst, float(numpy.abs(out[:, 3:3 + n] - ref).max() / numpy.abs(ref).max()))
print("parts", sorted(set(submitted)), len(submitted))
del submitted[:]
# nine products at once: whole ones to each thread, the ninth split by rows (120 >= 100)
a9 = rng.standard_normal((9, 120, 60)).astype(numpy.float32)
b9 = rng.standard_normal((9, 60, 100)).astype(numpy.float32)
out9 = numpy.full((9, 120, 100), numpy.nan, numpy.float32)
assert _blas.gemm_many([(a9[i], b9[i], out9[i]) for i in range(9)])
ref9 = a9.astype(numpy.float64) @ b9
worst = max(worst, float(numpy.abs(out9 - ref9).max() / numpy.abs(ref9).max()))
print("many", submitted)
del submitted[:]
# a deep product with a small output (the RGB layers' weight gradients) is split in two halves of k
a = rng.standard_normal((5000, 20)).astype(numpy.float32).T  # transposed, as z.T is
b = rng.standard_normal((5000, 16)).astype(numpy.float32)
wide = rng.standard_normal((20, 22)).astype(numpy.float32)
out = wide.copy()
assert _blas.gemm(a, b, out[:, 3:19], accumulate=True)
ref = wide[:, 3:19] + a.astype(numpy.float64) @ b
assert (out[:, :3] == wide[:, :3]).all() and (out[:, 19:] == wide[:, 19:]).all()
worst = max(worst, float(numpy.abs(out[:, 3:19] - ref).max() / numpy.abs(ref).max()))
print("deep", submitted)
print("worst", worst)
"""


@pytest.mark.parametrize("split", ["1", "0"])
def test_training_process_splits_products_over_the_pool(split):
    """A CPU DCGANUpdater makes every product split over the loops' pool (two threads here) and NumPy's
    OpenBLAS one-threaded; CHAINER_DCGAN_BLAS_SPLIT=0 leaves both. Windows, transposes, both splits."""
    if _blas.library() is None:
        pytest.skip("no OpenBLAS with a known cblas flavour beside NumPy (another NumPy build)")
    env = dict(os.environ, CHAINER_DCGAN_THREADS="2", OPENBLAS_NUM_THREADS="2", CHAINER_DCGAN_BLAS="1",
               CHAINER_DCGAN_BLAS_SPLIT=split)
    out = subprocess.run([sys.executable, "-c", SPLIT_CHECK], env=env, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines())
    if split == "1":
        assert lines["threads"] == "2 1"
        assert "split over the loops' threads, OpenBLAS at one thread" in lines["library"]
        # 4 calls per shape, second half on the pool's thread: rows 150 .. 300, columns 150 .. 300
        assert lines["parts"] == "[((150, 300),)] 8"
        # the pool's thread: products 4 .. 7 whole (rows 0 .. 120) and the second half of the ninth
        assert lines["many"] == "[((0, 120), (0, 120), (0, 120), (0, 120), (60, 120))]"
        assert lines["deep"] == "[((0, 20),)]"  # the second half of k, whole rows
    else:
        assert lines["threads"] == "2 2" and "split" not in lines["library"]
        assert lines["parts"] == "[] 0" and lines["many"] == lines["deep"] == "[]"
    assert float(lines["worst"]) < 1e-5


# -- gemm through oneMKL (CHAINER_DCGAN_BLAS=mkl, the mkl package) ------------------------------------

@pytest.fixture
def fresh_blas(monkeypatch):
    """_blas with its choice of library undone (and restored after), loops' pool of 2 threads."""
    monkeypatch.setattr(_blas, "_STATE", {})
    monkeypatch.setenv("CHAINER_DCGAN_THREADS", "2")
    for key in ("threads", "pool", "pid"):
        monkeypatch.setitem(_kernels._STATE, key, None)
    return _blas


def test_mkl_asked_for_but_absent_falls_back_to_openblas(fresh_blas, monkeypatch):
    monkeypatch.setattr(fresh_blas, "_mkl_paths", lambda: iter(["/nonexistent/libmkl_rt.so.3"]))
    monkeypatch.setenv("CHAINER_DCGAN_BLAS", "mkl")
    name = fresh_blas.library()
    assert name is None or "mkl" not in name
    assert not fresh_blas._STATE.get("split")


@pytest.fixture
def mkl(fresh_blas, monkeypatch):
    monkeypatch.setenv("CHAINER_DCGAN_BLAS", "mkl")
    if "mkl" not in (fresh_blas.library() or ""):
        pytest.skip("oneMKL not installed (pip install mkl)")
    return fresh_blas


@pytest.mark.parametrize("dtype", DTYPES)
@pytest.mark.parametrize("m, k, n", [(5, 7, 9), (300, 70, 40), (40, 70, 300)])  # unsplit, by rows, by columns
def test_mkl_gemm_windows_transposes_and_split(mkl, monkeypatch, dtype, m, k, n):
    rng = numpy.random.default_rng(m + n)
    a = rng.standard_normal((m, k)).astype(dtype)
    b = rng.standard_normal((k, n)).astype(dtype)
    expected = a.astype(numpy.float64) @ b
    tol = dict(rtol=1e-4, atol=1e-4) if dtype == numpy.float32 else dict(rtol=1e-12, atol=1e-12)
    assert (m * n * k >= mkl.SPLIT_ABOVE) == (m > 5)
    submitted = []
    real_pool = mkl._pool

    class Counting:
        def __init__(self, pool):
            self.pool = pool

        def submit(self, fn, job):
            submitted.append([(lo, hi) for _, lo, hi in job])  # the part's rows or columns
            return self.pool.submit(fn, job)

    monkeypatch.setattr(mkl, "_pool", lambda: Counting(real_pool()))
    for aa in (a, numpy.ascontiguousarray(a.T).T):
        for bb in (b, numpy.ascontiguousarray(b.T).T):
            wide = rng.standard_normal((m, n + 9)).astype(dtype)
            out = wide.copy()
            assert mkl.gemm(aa, bb, out[:, 4:4 + n], accumulate=True) is True
            numpy.testing.assert_allclose(out[:, 4:4 + n], wide[:, 4:4 + n] + expected, **tol)
            numpy.testing.assert_array_equal(out[:, :4], wide[:, :4])
            numpy.testing.assert_array_equal(out[:, 4 + n:], wide[:, 4 + n:])
            plain = numpy.full((m, n), numpy.nan, dtype)
            assert mkl.gemm(aa, bb, plain) is True
            numpy.testing.assert_allclose(plain, expected, **tol)
    # split in two halves of the longer side, the second half on the pool's thread (8 calls)
    half = [(150, 300)] if m != n and m > 5 else None
    assert submitted == ([half] * 8 if half else []), submitted[:2]


def test_mkl_training_step_matches_openblas(mkl, monkeypatch):
    """One update's gradients of the faithful models with the products in oneMKL: OpenBLAS's, rounding apart."""
    _, grads = _train(kernels=True, steps=1)
    mkl._STATE.clear()
    monkeypatch.setenv("CHAINER_DCGAN_BLAS", "1")
    assert "mkl" not in mkl.library()
    _, ref = _train(kernels=True, steps=1)
    assert sorted(grads) == sorted(ref)
    for name in ref:
        scale = numpy.abs(ref[name]).max()
        if scale < 1e-4:  # the biases before a BatchNormalization: rounding noise (see below)
            continue
        assert numpy.abs(grads[name] - ref[name]).max() <= 1e-3 * scale, name


# -- a whole training step --------------------------------------------------------------------------

def _train(kernels, steps=2, size=64, batch=4, seed=0):
    """Parameters and gradients (of the last update) after ``steps`` updates, as bench/train_step.py builds them."""
    from chainer_dcgan.models import Discriminator, Generator
    from chainer_dcgan.training import make_optimizer
    from chainer_dcgan.training.updater import DCGANUpdater

    device = chainer.get_device("@numpy")
    data = list(numpy.random.default_rng(seed).uniform(-1, 1, (batch, 3, size, size)).astype(numpy.float32))
    numpy.random.seed(seed)
    gen, dis = Generator(size=size), Discriminator(size=size)
    opts = {"gen": make_optimizer(gen), "dis": make_optimizer(dis)}
    it = chainer.iterators.SerialIterator(data, batch, shuffle=False)
    updater = DCGANUpdater(it, opts, device=device, seed=seed)
    for _ in range(steps):
        with chainer.using_config("dcgan_kernels", kernels):
            updater.update()
    params = [(prefix + name, p) for prefix, link in (("gen", gen), ("dis", dis)) for name, p in link.namedparams()]
    return {k: p.array.copy() for k, p in params}, {k: p.grad.copy() for k, p in params}


def test_training_step_matches_numpy(spy):
    from chainer_dcgan.models import hparams

    steps = 2
    on, _ = _train(True, steps)
    # the middle layers on the Winograd path, the RGB ones on the column path
    assert all(spy.get(name) for name in ("space_to_depth", "depth_to_space", "to_grid", "from_grid", "im2col",
                                          "col2im", "wino_input", "wino_input_adjoint", "wino_output",
                                          "wino_output_adjoint", "wino_weight", "wino_weight_grad",
                                          "bn_act_forward", "bn_act_backward", "elu_backward")), spy
    off, _ = _train(False, steps)
    # gradients of the first update, from the same parameters: rounding apart, equal (after it, the
    # noise steps of the bias terms below make the runs' parameters, and so gradients, differ)
    _, gon = _train(True, 1)
    _, goff = _train(False, 1)
    assert sorted(on) == sorted(off) and sorted(gon) == sorted(on)
    # The biases of the layers that a BatchNormalization follows have a true gradient of zero: theirs
    # is rounding noise (at most 2e-6 measured; the smallest other gradient scale is 8e-3), whose sign
    # differs between any two summation orders (Chainer's own path against the fast one as much), and
    # Adam turns it into a step of +-alpha. They are held to Adam's bound only.
    noise = {k for k in on if numpy.abs(goff[k]).max() < 1e-4}
    assert noise and all(k.endswith("/b") for k in noise) and len(noise) < len(on) // 3, sorted(noise)
    bound = 2 * steps * hparams.ADAM_ALPHA  # Adam moves a parameter by at most about alpha per step
    for key in on:
        diff = numpy.abs(on[key] - off[key])
        assert diff.max() <= bound, (key, diff.max())
        if key in noise:
            continue
        # the first update's gradients: measured within 2e-5 of each parameter's largest
        scale = numpy.abs(goff[key]).max()
        assert numpy.abs(gon[key] - goff[key]).max() <= 5e-4 * scale, (key, numpy.abs(gon[key] - goff[key]).max(),
                                                                         scale)
        # the parameters: within rtol 1e-4 / atol 1e-5 but for elements whose gradient is within
        # rounding of zero: Adam's first steps are about +-alpha * sign(gradient), so their sign can
        # flip (measured: 341 of 2097152 elements of gen/dc1/W, whose 6x6 side then took the column path,
        # whose sums run in another order than the grid's)
        close = numpy.isclose(on[key], off[key], rtol=1e-4, atol=1e-5)
        assert numpy.count_nonzero(~close) <= 1e-3 * close.size, (key, numpy.count_nonzero(~close), close.size)


# -- the column and Winograd paths ----------------------------------------------------------------------

def test_im2col_and_col2im_are_adjoint(spy):
    """col2im is the transpose of im2col (<im2col(Z), P> = <Z, col2im(P)>), and im2col copies the windows."""
    rng = numpy.random.default_rng(5)
    n, h, w, B4 = 2, 3, 5, 8
    Z = rng.standard_normal((B4, n * (h + 1) * (w + 1)))
    P = rng.standard_normal((4 * B4, n * h * w))
    col = _call(lambda: _kernels.im2col(Z, n, h, w), True)
    back = _call(lambda: _kernels.col2im(P, n, h, w), True)
    numpy.testing.assert_allclose((col * P).sum(), (Z * back).sum(), rtol=1e-12)
    Z4 = Z.reshape(B4, n, h + 1, w + 1)
    for a, (ay, ax) in enumerate(((0, 0), (0, 1), (1, 0), (1, 1))):
        numpy.testing.assert_array_equal(col[a * B4:(a + 1) * B4].reshape(B4, n, h, w), Z4[:, :, ay:ay + h, ax:ax + w])
    W = rng.standard_normal((6, B4 // 4, 4, 4)).astype(numpy.float32)
    cat = _call(lambda: _kernels.reorder_weight_cat(W), True)
    numpy.testing.assert_array_equal(cat.reshape(6, 4, B4).transpose(1, 0, 2),
                                     _call(lambda: stride2_conv.reorder_weight(W), False))
    numpy.testing.assert_array_equal(_call(lambda: _kernels.restore_weight_cat(cat), True), W)


# the layers each path is chosen for (COLUMNS_ABOVE, WINOGRAD): small side 3x3 (16 grid cells for 9
# pixels: columns), 8x12 (117 for 96, both even, 5 channels on the Z side: Winograd), and an RGB
# layer (3 channels on the Z side: columns whatever the side; its grid form stacks the taps)
PATH_SIDES = {"cols": (3, 3, 5), "wino": (8, 12, 5), "rgb": (4, 6, 3)}


@pytest.mark.parametrize("path", ["cols", "wino", "rgb"])
@pytest.mark.parametrize("transposed", [False, True])
def test_each_path_equals_the_grid_path(monkeypatch, path, transposed):
    """A layer gives the same output and gradients on the column and the Winograd path as on the grid
    path (float64), and each path is taken where it is meant to be."""
    rng = numpy.random.default_rng(6)
    h, w, B = PATH_SIDES[path]
    if transposed:
        x = rng.standard_normal((2, 6, h, w))
        fn = stride2_conv.deconvolution_2d
    else:
        x = rng.standard_normal((2, B, 2 * h, 2 * w))
        fn = stride2_conv.convolution_2d
    W = rng.standard_normal((6, B, 4, 4))
    b = rng.standard_normal(B if transposed else 6)

    def run():
        xv, Wv, bv = chainer.Variable(x.copy()), chainer.Variable(W.copy()), chainer.Variable(b.copy())
        y = fn(xv, Wv, bv, stride=2, pad=1)
        gy = numpy.random.default_rng(7).standard_normal(y.shape)
        y.grad = gy
        y.backward()
        return y.array, xv.grad, Wv.grad, bv.grad

    taken = []
    real = stride2_conv._path
    monkeypatch.setattr(stride2_conv, "_path", lambda *a: taken.append(real(*a)) or taken[-1])
    fast = _call(run, True)
    assert taken and set(taken) == {"cols" if path == "rgb" else path}, taken
    monkeypatch.setattr(stride2_conv, "COLUMNS_ABOVE", 100.0)
    monkeypatch.setattr(stride2_conv, "WINOGRAD", False)
    del taken[:]
    grid = _call(run, path != "rgb")  # an RGB layer takes the grid only without the loops
    assert taken and set(taken) == {"grid"}, taken
    for f, g in zip(fast, grid):
        numpy.testing.assert_allclose(f, g, rtol=1e-12, atol=1e-12)


def test_winograd_path_is_taken_only_where_it_serves():
    """Winograd needs an even small side and more than STACK_MAX_CHANNELS channels on the Z side, the
    compiled loops (training mode) and the switch; the 96 px models' 24x24, 12x12 and 6x6 layers take
    it, their RGB layers the column path."""
    x = numpy.zeros((1, 1), numpy.float32)
    with chainer.using_config("train", True), chainer.using_config("dcgan_kernels", True):
        assert stride2_conv._path(24, 24, x, 64) == stride2_conv._path(12, 12, x, 128) == "wino"
        assert stride2_conv._path(6, 6, x, 256) == "wino"
        assert stride2_conv._path(5, 5, x, 256) == "cols"  # odd: 36 grid cells for 25 pixels
        assert stride2_conv._path(48, 48, x, 3) == "cols"  # the RGB layers: one product of depth 48
        assert stride2_conv._path(11, 12, x, 64) == "grid"  # an odd side has no 2x2 tiles
    with chainer.using_config("train", False):
        assert stride2_conv._path(24, 24, x, 64) == "grid"  # NumPy's passes outside training


@pytest.mark.parametrize("dtype", DTYPES)
def test_winograd_transforms_are_adjoint_and_convolve(dtype):
    """wino_input / wino_output / wino_weight and their transposes: <T a, b> = <a, T^T b>, and
    output(U @ input) is Chainer's own convolution (each on a shape with padding on every border)."""
    rng = numpy.random.default_rng(8)
    N, C, H, W, A = 2, 3, 8, 12, 5
    x = rng.standard_normal((N, C, H, W)).astype(dtype)
    Wc = rng.standard_normal((A, C, 4, 4)).astype(dtype)
    with chainer.using_config("train", True):
        V, U = _kernels.wino_input(x), _kernels.wino_weight(Wc)
        assert V.shape == (9, 4 * C, N * (H // 4) * (W // 4)) and U.shape == (9, A, 4 * C)
        M = numpy.stack([U[k] @ V[k] for k in range(9)])
        y = _kernels.wino_output(M, (N, A, H // 2, W // 2))
        P, g, gU = (rng.standard_normal(a.shape).astype(dtype) for a in (V, y, U))
        xb = _kernels.wino_input_adjoint(P, x.shape)
        Mb = _kernels.wino_output_adjoint(g)
        Wb = _kernels.wino_weight_grad(gU)
    ref = chainer.functions.convolution_2d(x, Wc, stride=2, pad=1).array
    tol = TOL[dtype]
    numpy.testing.assert_allclose(y, ref, rtol=tol["rtol"] * 10, atol=tol["atol"] * 10)
    eps = 1e-12 if dtype == numpy.float64 else 1e-5  # relative to the norms (the sums cancel)

    def adjoint(a, Ta, b, Tb):  # <T a, b> = <a, T^T b>
        left, right = (float((u.astype(numpy.float64) * v).sum()) for u, v in ((Ta, b), (a, Tb)))
        assert abs(left - right) <= eps * numpy.linalg.norm(Ta) * numpy.linalg.norm(b), (left, right)
    adjoint(x, V, P, xb)
    adjoint(M, y, g, Mb)
    adjoint(Wc, U, gU, Wb)


def test_without_numba_the_numpy_passes_run():
    """Where numba cannot be imported (the GPU machine carries no wheel of it), training runs the NumPy
    code: the loops report themselves unavailable and an update goes through."""
    script = (
        "import sys\n"
        "sys.modules['numba'] = None  # import numba raises ImportError\n"
        "import chainer, numpy\n"
        "from chainer_dcgan.functions import _kernels\n"
        "from chainer_dcgan.models import Discriminator, Generator\n"
        "from chainer_dcgan.training import make_optimizer\n"
        "from chainer_dcgan.training.updater import DCGANUpdater\n"
        "assert not _kernels.importable()\n"
        "with chainer.using_config('train', True):\n"
        "    assert not _kernels.active(numpy.zeros(3, numpy.float32))\n"
        "data = list(numpy.random.default_rng(0).uniform(-1, 1, (2, 3, 64, 64)).astype(numpy.float32))\n"
        "gen, dis = Generator(size=64), Discriminator(size=64)\n"
        "w0 = gen.dc1.W.array.copy()\n"
        "it = chainer.iterators.SerialIterator(data, 2)\n"
        "up = DCGANUpdater(it, {'gen': make_optimizer(gen), 'dis': make_optimizer(dis)}, device='@numpy', seed=0)\n"
        "up.update()\n"
        "assert not numpy.array_equal(gen.dc1.W.array, w0)\n"
        "print('ok')\n")
    out = subprocess.run([sys.executable, "-c", script], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
