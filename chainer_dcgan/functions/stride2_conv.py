"""4x4, stride 2, pad 1 convolution and deconvolution as a few large matrix products.

Every (de)convolution of the DCGAN has this shape. Chainer's own CPU path builds an ``im2col``
buffer 4 times the size of the input with a strided gather and multiplies it with
``numpy.tensordot``, whose transposes copy it again. Here the padded input is instead rearranged
once, space-to-depth, into ``Z`` of shape ``(4B, N * gh * gw)``: row ``(c, py, px)``, column
``(n, u, v)`` holds ``x_pad[n, c, 2u + py, 2v + px]`` on a grid of ``gh x gw = (H/2 + 1) x (W/2 + 1)``
cells. A 4x4 stride-2 kernel is then a 2x2 stride-1 kernel over ``Z``, and since the grid is
flattened, each of its four taps ``(ay, ax)`` is a plain column shift by ``ay * gw + ax``: the
convolution is four matrix products over shifted, contiguous column windows of ``Z``, with no
gather at all. Outputs land on the same grid; the cells of its last grid row and column are
not output pixels (they are cropped, or kept at zero where the grid is an input).

With ``Wc`` a convolution weight ``(A, B, 4, 4)`` (``A`` outputs, ``B`` inputs), tap ``a`` is
``Wr[a] = Wc[:, :, 2ay + py, 2ax + px]`` as an ``(A, 4B)`` matrix and, with ``Y`` the output grid
``(A, N * gh * gw)`` and ``M = N * gh * gw - gw - 1`` columns computed::

    gather:  Y[:, :M]              = sum_a Wr[a]   @ Z[:, off_a : off_a + M]   (convolution)
    scatter: Z[:, off_a : off_a + M] += Wr[a].T @ Y[:, :M]                     (its transpose)
    wgrad:   gWr[a]                =  Y[:, :M]     @ Z[:, off_a : off_a + M].T

For the RGB layers (at most :data:`STACK_MAX_CHANNELS` channels on the ``Z`` side) the four taps
are stacked into one product instead, since four products of depth 12 use BLAS poorly.

A deconvolution with weight ``(Cin, Cout, 4, 4)`` is the transpose of the convolution with that
same array as ``Wc``, so four primitives serve both directions of both layers. Arrays are NumPy
or CuPy alike (the array module is taken from the inputs); layouts are standard NCHW.

On the CPU the accumulating products add into their window in BLAS itself (:mod:`._blas`), and in
training the layout changes are compiled loops (:mod:`._kernels`). There, a layer not on the
Winograd path (below) whose grid has many cells that are not output pixels (:data:`COLUMNS_ABOVE`),
or that has at most :data:`STACK_MAX_CHANNELS` channels on the ``Z`` side (the RGB layers: their
stacked product, without its NumPy copies), takes the column path instead: the four windows of
each output pixel copied side by side once (``(16B, N*h*w)``, no extra cells) and one product of
depth 16B with the taps' weights side by side ``(A, 16B)``; its transpose sums the four windows
back (:func:`._kernels.col2im`).

**Winograd.** Where the loops run, the layers with an even small side and more than
:data:`STACK_MAX_CHANNELS` channels on the ``Z`` side (the 96 px models' 24x24, 12x12 and 6x6 ones)
take the Winograd path instead: the 2x2 stride-1 kernel over ``Z`` is computed as F(2x2, 2x2)
(Lavin and Gray, 2016). Each 2x2 block of outputs needs a 3x3 tile of ``Z`` (tiles at even cells,
``T = n*(h/2)*(w/2)`` of them, none beyond the output) and 9 products instead of 16, with
transforms whose coefficients are 0 and +-1 (so no rounding beyond the additions):
``V = Bt d Bt^T`` for each tile ``d`` of ``Z``, ``U = G g G^T`` for each 2x2 tap block ``g`` of the
weight, ``M[k] = U[k] @ V[k]`` for the 9 positions ``k``, and each output block ``At M At^T``, with
``Bt = [[1, -1, 0], [0, 1, 0], [0, -1, 1]]``, ``G = [[1, 0], [1, 1], [0, 1]]`` and
``At = [[1, 1, 0], [0, 1, 1]]``. The transposed convolution and the weight gradient are the
transposes of the same steps (``P[k] = U[k].T @ At^T y At``; ``gU[k] = (At^T y At)[k] @ V[k].T``,
then ``G^T gU G``). Against the grid's four products this is 52 % of the
multiply-adds at 24x24 and 48 % at 12x12 (the grid's extra cells included; 56 % of the column
path's at 6x6), for transforms that read and write 9/4 of the ``Z`` side (bench/RESULTS.md, issue
23). The transforms are :func:`._kernels.wino_input` and the others beside it;
``CHAINER_DCGAN_WINOGRAD=0`` (:data:`WINOGRAD`) keeps the grid and column paths.
"""
import chainer
import chainer.functions as F
import numpy
from chainer import function_node
from chainer.backend import get_array_module
from chainer.utils import type_check

from chainer_dcgan.functions import _blas, _kernels
from chainer_dcgan.functions._switch import enabled

KSIZE, STRIDE, PAD = 4, 2, 1


def _pair(v):
    return tuple(v) if isinstance(v, (tuple, list)) else (v, v)


def _grid(h, w):
    """Grid cells ``(gh, gw)`` of a stride-2 layer whose small side is ``h x w``."""
    return h + 1, w + 1


def _span(n, gh, gw):
    """Number of grid columns that the shifted products compute: all but the last ``gw + 1``."""
    return n * gh * gw - gw - 1


def _offsets(gw):
    return (0, 1, gw, gw + 1)  # taps (ay, ax) = (0, 0), (0, 1), (1, 0), (1, 1)


def _pairs(a):
    """A C-contiguous float32 array viewed with each two neighbours on the last axis as one int64.

    The ``px`` pairs of a kernel are neighbours in both layouts, so moving pairs halves the elements
    (and the time) of NumPy's strided copies; other dtypes move as they are.
    """
    if a.dtype.itemsize == 4 and a.shape[-1] % 2 == 0:
        return a.view(numpy.int64), 1
    return a, 2


def reorder_weight(Wc):
    """Conv weight ``(A, B, 4, 4)`` -> taps ``(4, A, 4B)``: ``[ay*2+ax][o, c*4+py*2+px] = Wc[o, c, 2ay+py, 2ax+px]``."""
    xp = get_array_module(Wc)
    if _kernels.active(Wc):
        return _kernels.reorder_weight(Wc)
    A, B = Wc.shape[:2]
    src, px = _pairs(xp.ascontiguousarray(Wc))
    # (A*B, ay, py, ax[, px]) -> (ay, ax, A*B, py[, px])
    src = src.reshape((A * B, 2, 2, 2) + ((2,) if px == 2 else ()))
    out = xp.empty((2, 2, A * B, 2) + ((2,) if px == 2 else ()), dtype=src.dtype)
    out[...] = src.transpose((1, 3, 0, 2) + ((4,) if px == 2 else ()))
    return out.view(Wc.dtype).reshape(4, A, 4 * B)


def restore_weight(Wr):
    """Inverse of :func:`reorder_weight`: taps ``(4, A, 4B)`` -> ``(A, B, 4, 4)``."""
    xp = get_array_module(Wr)
    if _kernels.active(Wr):
        return _kernels.restore_weight(Wr)
    _, A, B4 = Wr.shape
    B = B4 // 4
    src, px = _pairs(xp.ascontiguousarray(Wr))
    src = src.reshape((2, 2, A * B, 2) + ((2,) if px == 2 else ()))  # (ay, ax, A*B, py[, px])
    out = xp.empty((A * B, 2, 2, 2) + ((2,) if px == 2 else ()), dtype=src.dtype)
    out[...] = src.transpose((2, 0, 3, 1) + ((4,) if px == 2 else ()))
    return out.view(Wr.dtype).reshape(A, B, 4, 4)


def space_to_depth(x):
    """NCHW ``x`` (H, W even) -> ``Z`` ``(4C, N*gh*gw)`` of its 1-padded version (see module doc)."""
    xp = get_array_module(x)
    N, C, H, W = x.shape
    h, w = H // 2, W // 2
    gh, gw = _grid(h, w)
    if _kernels.active(x):
        return _kernels.space_to_depth(x, gh, gw)
    Z = xp.zeros((C, 2, 2, N, gh, gw), dtype=x.dtype)
    for py in (0, 1):
        for px in (0, 1):
            # x_pad row 2u + py is x row 2u + py - 1: odd rows for py = 0 (u >= 1), even for py = 1.
            Z[:, py, px, :, 1 - py:1 - py + h, 1 - px:1 - px + w] = \
                x[:, :, 1 - py::2, 1 - px::2].transpose(1, 0, 2, 3)
    return Z.reshape(4 * C, N * gh * gw)


def depth_to_space(Z, shape, bias=None):
    """Inverse of :func:`space_to_depth` (the padding dropped): ``Z`` -> NCHW of ``shape``, plus ``bias``."""
    xp = get_array_module(Z)
    N, C, H, W = shape
    h, w = H // 2, W // 2
    gh, gw = _grid(h, w)
    if _kernels.active(Z):
        return _kernels.depth_to_space(Z, shape, gh, gw, bias)
    Z6 = Z.reshape(C, 2, 2, N, gh, gw)
    x = xp.empty(shape, dtype=Z.dtype)
    for py in (0, 1):
        for px in (0, 1):
            src = Z6[:, py, px, :, 1 - py:1 - py + h, 1 - px:1 - px + w].transpose(1, 0, 2, 3)
            dst = x[:, :, 1 - py::2, 1 - px::2]
            if bias is None:
                dst[...] = src
            else:
                xp.add(src, bias.reshape(1, C, 1, 1), out=dst)
    return x


def to_grid(y):
    """NCHW ``y`` (the small side ``h x w``) -> ``(C, N*gh*gw)`` with zeros in the extra grid cells."""
    xp = get_array_module(y)
    N, C, h, w = y.shape
    gh, gw = _grid(h, w)
    if _kernels.active(y):
        return _kernels.to_grid(y, gh, gw)
    Y = xp.zeros((C, N, gh, gw), dtype=y.dtype)
    Y[:, :, :h, :w] = y.transpose(1, 0, 2, 3)
    return Y.reshape(C, N * gh * gw)


def from_grid(Y, shape, bias=None):
    """Inverse of :func:`to_grid`: ``(C, N*gh*gw)`` -> NCHW ``shape``, plus ``bias``."""
    xp = get_array_module(Y)
    N, C, h, w = shape
    gh, gw = _grid(h, w)
    if _kernels.active(Y):
        return _kernels.from_grid(Y, shape, gh, gw, bias)
    src = Y.reshape(C, N, gh, gw)[:, :, :h, :w].transpose(1, 0, 2, 3)
    if bias is None:
        return xp.ascontiguousarray(src)
    y = xp.empty(shape, dtype=Y.dtype)
    xp.add(src, bias.reshape(1, C, 1, 1), out=y)
    return y


def _matmul(a, b, out=None):
    """``a @ b`` into ``out`` (allocated when None). NumPy hands a row-strided ``out`` view straight
    to BLAS; other array modules compute then copy."""
    xp = get_array_module(a)
    if xp is numpy or out is None or out.flags.c_contiguous:
        return xp.matmul(a, b, out=out)
    out[...] = xp.matmul(a, b)
    return out


def _product(a, b, out, accumulate):
    """``out = a @ b`` or ``out += a @ b``: by BLAS into ``out`` itself where it can (:mod:`._blas`),
    else a product and an addition."""
    if _blas.gemm(a, b, out, accumulate):
        return
    if accumulate:
        _add(out, _matmul(a, b))
    else:
        _matmul(a, b, out)


def _products(triples):
    """``out = a @ b`` for each ``(a, b, out)``: spread over the threads by :func:`._blas.gemm_many`
    where it can, else one by one."""
    if not _blas.gemm_many(triples):
        for a, b, out in triples:
            _product(a, b, out, accumulate=False)


def _add(dst, src):
    """``dst += src`` (2-D; ``dst`` may be a window of a wider array)."""
    if _kernels.active(dst, src):
        _kernels.add_into(dst, src)
    else:
        dst += src


#: With at most this many input channels (``B``; 4B rows in ``Z``), the four taps are stacked into
#: one product of depth 16B (the RGB layers: four products of depth 12 use BLAS poorly).
STACK_MAX_CHANNELS = 4


def _stacked_windows(Z, M, gw):
    """The four shifted windows ``Z[:, off_a:off_a + M]`` one below the other: ``(4 * 4B, M)``."""
    B4 = Z.shape[0]
    col = get_array_module(Z).empty((4 * B4, M), dtype=Z.dtype)
    for a, off in enumerate(_offsets(gw)):
        col[a * B4:(a + 1) * B4] = Z[:, off:off + M]
    return col


def gather(Wr, Z, n, gh, gw):
    """Convolution on the grid: ``Y[:, :M] = sum_a Wr[a] @ Z[:, off_a:off_a + M]``; ``Y`` is ``(A, N*gh*gw)``."""
    xp = get_array_module(Z)
    A, B4 = Wr.shape[1:]
    M = _span(n, gh, gw)
    Y = xp.empty((A, Z.shape[1]), dtype=Z.dtype)
    Y[:, M:] = 0
    out = Y[:, :M]
    if B4 <= 4 * STACK_MAX_CHANNELS:
        _product(Wr.transpose(1, 0, 2).reshape(A, 4 * B4), _stacked_windows(Z, M, gw), out, accumulate=False)
        return Y
    for a, off in enumerate(_offsets(gw)):
        _product(Wr[a], Z[:, off:off + M], out, accumulate=a > 0)
    return Y


def scatter(Wr, Y, n, gh, gw):
    """Transposed convolution on the grid: ``Z[:, off_a:off_a + M] += Wr[a].T @ Y[:, :M]``.

    The extra grid cells of ``Y`` must be zero.
    """
    xp = get_array_module(Y)
    B4 = Wr.shape[2]
    M = _span(n, gh, gw)
    src = Y[:, :M]
    if B4 <= 4 * STACK_MAX_CHANNELS:
        P = xp.empty((4 * B4, src.shape[1]), dtype=Y.dtype)
        _product(Wr.transpose(0, 2, 1).reshape(4 * B4, Wr.shape[1]), src, P, accumulate=False)
        Z = xp.zeros((B4, Y.shape[1]), dtype=Y.dtype)
        for a, off in enumerate(_offsets(gw)):
            _add(Z[:, off:off + M], P[a * B4:(a + 1) * B4])
        return Z
    Z = xp.empty((B4, Y.shape[1]), dtype=Y.dtype)
    Z[:, M:] = 0
    for a, off in enumerate(_offsets(gw)):
        _product(Wr[a].T, src, Z[:, off:off + M], accumulate=a > 0)
    return Z


def wgrad(Y, Z, n, gh, gw):
    """Weight gradient on the grid: ``gWr[a] = Y[:, :M] @ Z[:, off_a:off_a + M].T``, ``(4, A, 4B)``.

    The extra grid cells of ``Y`` must be zero.
    """
    xp = get_array_module(Y)
    M = _span(n, gh, gw)
    A, B4 = Y.shape[0], Z.shape[0]
    src = Y[:, :M]
    if B4 <= 4 * STACK_MAX_CHANNELS:
        # one product against the four windows stacked (four of width 12 use BLAS poorly)
        g = xp.empty((A, 4 * B4), dtype=Y.dtype)
        _product(src, _stacked_windows(Z, M, gw).T, g, accumulate=False)
        return xp.ascontiguousarray(g.reshape(A, 4, B4).transpose(1, 0, 2))
    gWr = xp.empty((4, A, B4), dtype=Y.dtype)
    if A < B4 and xp is numpy:
        # OpenBLAS does these long-K products about 10 % faster with the longer side first
        # (measured for A = 128, 4B = 256: 231 against 209 GFLOP/s); the transpose is small
        tmp = numpy.empty((B4, A), dtype=Y.dtype)
        for a, off in enumerate(_offsets(gw)):
            _product(Z[:, off:off + M], src.T, tmp, accumulate=False)
            gWr[a] = tmp.T
        return gWr
    for a, off in enumerate(_offsets(gw)):
        _product(src, Z[:, off:off + M].T, gWr[a], accumulate=False)
    return gWr


#: Where the compiled loops run, a layer with more than :data:`STACK_MAX_CHANNELS` channels on the
#: ``Z`` side and an even small side takes the Winograd path (module doc; all three middle layers
#: of the 96 px models); False: the column or the grid path. Default: the environment variable
#: ``CHAINER_DCGAN_WINOGRAD``, on unless ``0``/``false``/``no``/``off``.
WINOGRAD = _kernels.switch_default("CHAINER_DCGAN_WINOGRAD")

#: Where the compiled loops run, a layer not on the Winograd path whose padded grid has more than
#: this many cells per output pixel ((h+1)(w+1) / hw; 1.36 for a 6x6 side, 1.17 for 12x12) takes the
#: column path: its four windows copied side by side once (:func:`._kernels.im2col`), one product
#: of depth 16B with no grid cells computed for nothing. (bench/RESULTS.md, issue 23.)
COLUMNS_ABOVE = 1.25


def description():
    """One line for logs and benchmarks: which path the middle layers take where the loops run."""
    if not _kernels.importable():
        return "grid (no compiled loops)"
    return "Winograd F(2x2, 2x2) on even sides" if WINOGRAD else "grid (CHAINER_DCGAN_WINOGRAD=0)"


def _path(h, w, x, B):
    """How a layer with small side ``h x w``, ``B`` channels on the ``Z`` side, on array ``x`` runs:
    ``"cols"``, ``"wino"`` or ``"grid"`` (the module doc)."""
    if not _kernels.active(x):
        return "grid"
    if WINOGRAD and B > STACK_MAX_CHANNELS and h % 2 == 0 and w % 2 == 0:
        return "wino"
    if (h + 1) * (w + 1) > COLUMNS_ABOVE * h * w or B <= STACK_MAX_CHANNELS:
        return "cols"
    return "grid"


# Each primitive in the grid layout (path "grid"), the column layout ("cols": the output side ``Y``
# is then ``(A, n*h*w)`` without extra cells, the input side is im2col's ``(16B, n*h*w)`` and the
# weight ``(A, 16B)``) or the Winograd one ("wino": the output side is ``(9, A, T)``, the input side
# ``(9, 4B, T)`` and the weight ``(9, A, 4B)``, ``T = n*(h/2)*(w/2)`` tiles).

def _y_side(y, path):
    """The output side of a layer from NCHW ``y`` (a deconvolution's input, a convolution's gradient)."""
    if path == "cols":
        return _kernels.to_grid(y, y.shape[2], y.shape[3])
    if path == "wino":
        return _kernels.wino_output_adjoint(y)
    return to_grid(y)


def _from_y_side(Y, shape, b, path):
    """NCHW ``shape`` plus ``b`` from what :func:`_gather` computed."""
    if path == "cols":
        return _kernels.from_grid(Y, shape, shape[2], shape[3], b)
    if path == "wino":
        return _kernels.wino_output(Y, shape, b)
    return from_grid(Y, shape, b)


def _z_side(x, path):
    """The input side of a layer from NCHW ``x`` (a convolution's input, a deconvolution's gradient)."""
    if path == "wino":
        return _kernels.wino_input(x)
    z = space_to_depth(x)
    if path == "cols":
        N, _, H, W = x.shape
        return _kernels.im2col(z, N, H // 2, W // 2)
    return z


def _from_z_side(Z, shape, b, path):
    """NCHW ``shape`` plus ``b`` from what :func:`_scatter` computed."""
    if path == "wino":
        return _kernels.wino_input_adjoint(Z, shape, b)
    return depth_to_space(Z, shape, b)


def _taps(W, path):
    if path == "wino":
        return _kernels.wino_weight(W)
    return _kernels.reorder_weight_cat(W) if path == "cols" else reorder_weight(W)


def _untaps(g, path):
    if path == "wino":
        return _kernels.wino_weight_grad(g)
    return _kernels.restore_weight_cat(g) if path == "cols" else restore_weight(g)


def _gather(w_taps, z, n, h, w, path):
    if path == "grid":
        return gather(w_taps, z, n, h + 1, w + 1)
    if path == "wino":  # M[k] = U[k] @ V[k]
        M = numpy.empty((9, w_taps.shape[1], z.shape[2]), dtype=z.dtype)
        _products([(w_taps[k], z[k], M[k]) for k in range(9)])
        return M
    Y = numpy.empty((w_taps.shape[0], z.shape[1]), dtype=z.dtype)
    _product(w_taps, z, Y, accumulate=False)
    return Y


def _scatter(w_taps, Y, n, h, w, path):
    if path == "grid":
        return scatter(w_taps, Y, n, h + 1, w + 1)
    if path == "wino":  # P[k] = U[k].T @ M[k]
        P = numpy.empty((9, w_taps.shape[2], Y.shape[2]), dtype=Y.dtype)
        _products([(w_taps[k].T, Y[k], P[k]) for k in range(9)])
        return P
    P = numpy.empty((w_taps.shape[1], Y.shape[1]), dtype=Y.dtype)
    _product(w_taps.T, Y, P, accumulate=False)
    return _kernels.col2im(P, n, h, w)


def _wgrad(Y, z, n, h, w, path):
    if path == "grid":
        return wgrad(Y, z, n, h + 1, w + 1)
    if path == "wino":  # gU[k] = M[k] @ V[k].T; unlike wgrad, never the longer side first: the
        # transposed (9, 4B, A) result then costs more to restore than the order gains (6x6 side,
        # batch 32: 32.0 against 13.6 ms)
        gU = numpy.empty((9, Y.shape[1], z.shape[1]), dtype=Y.dtype)
        _products([(Y[k], z[k].T, gU[k]) for k in range(9)])
        return gU
    g = numpy.empty((Y.shape[0], z.shape[0]), dtype=Y.dtype)
    _product(Y, z.T, g, accumulate=False)
    return g


def supported(x_shape, W_shape, stride, pad, transposed, outsize=None, dilate=1, groups=1, dtype=None):
    """Whether the fast path handles this layer; else the caller uses Chainer's own function."""
    if len(x_shape) != 4 or len(W_shape) != 4 or W_shape[2:] != (KSIZE, KSIZE):
        return False
    if _pair(stride) != (STRIDE, STRIDE) or _pair(pad) != (PAD, PAD) or _pair(dilate) != (1, 1) or groups != 1:
        return False
    if dtype is not None and numpy.dtype(dtype) not in (numpy.float32, numpy.float64):
        return False
    N, C, H, W = x_shape
    if N == 0:
        return False
    if transposed:
        return W_shape[0] == C and (outsize is None or tuple(outsize) in ((None, None), (2 * H, 2 * W)))
    return W_shape[1] == C and H % 2 == 0 and W % 2 == 0 and H >= 2 and W >= 2


def _check_types(in_types, transposed):
    n_in = in_types.size()
    type_check.expect(2 <= n_in, n_in <= 3)
    x_type, w_type = in_types[:2]
    type_check.expect(
        x_type.dtype.kind == "f",
        w_type.dtype == x_type.dtype,
        x_type.ndim == 4,
        w_type.ndim == 4,
        x_type.shape[1] == w_type.shape[0 if transposed else 1],
    )
    if n_in == 3:
        type_check.expect(in_types[2].dtype == x_type.dtype, in_types[2].ndim == 1,
                          in_types[2].shape[0] == w_type.shape[1 if transposed else 0])


class Convolution2D(function_node.FunctionNode):
    """``y = conv(x, W) + b``, 4x4 stride 2 pad 1; x ``(N, B, H, W)``, W ``(A, B, 4, 4)`` -> ``(N, A, H/2, W/2)``.

    Args:
        z (array or None): ``_z_side(x, path)`` when the caller already has it.
        w_taps (array or None): ``_taps(W, path)`` when the caller already has it.
        path (str or None): ``"grid"``, ``"cols"`` or ``"wino"`` (:func:`_path`); None decides from
            the shape.
    """

    def __init__(self, z=None, w_taps=None, path=None):
        self._z = z
        self._w_taps = w_taps
        self._path = path

    def check_type_forward(self, in_types):
        _check_types(in_types, transposed=False)

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, W = inputs[:2]
        b = inputs[2] if len(inputs) == 3 else None
        N, _, H, Wd = x.shape
        h, w = H // 2, Wd // 2
        if self._path is None:
            self._path = _path(h, w, x, x.shape[1])
        if self._z is None:
            self._z = _z_side(x, self._path)
        if self._w_taps is None:
            self._w_taps = _taps(W, self._path)
        Y = _gather(self._w_taps, self._z, N, h, w, self._path)
        return _from_y_side(Y, (N, W.shape[0], h, w), b, self._path),

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        gy, = grad_outputs
        y_side = _y_side(gy.array, self._path)
        ret = []
        if 0 in indexes:
            ret.append(Deconvolution2D(y_grid=y_side, w_taps=self._w_taps, path=self._path).apply((gy, W))[0])
        if 1 in indexes:
            ret.append(Convolution2DGradW(self._z, y_side, path=self._path).apply((x, gy))[0])
        if 2 in indexes:
            ret.append(F.sum(gy, axis=(0, 2, 3)))
        return ret


class Convolution2DGradW(function_node.FunctionNode):
    """Weight gradient of :class:`Convolution2D`: ``(x, gy) -> gW (A, B, 4, 4)``."""

    def __init__(self, z=None, y_grid=None, path=None):
        self._z, self._y_grid, self._path = z, y_grid, path

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, gy = inputs
        N, _, h, w = gy.shape
        path = _path(h, w, x, x.shape[1]) if self._path is None else self._path
        z = _z_side(x, path) if self._z is None else self._z
        y_grid = _y_side(gy, path) if self._y_grid is None else self._y_grid
        self._z = self._y_grid = None  # not needed past here; free them with the graph
        return _untaps(_wgrad(y_grid, z, N, h, w, path), path),

    def backward(self, indexes, grad_outputs):
        x, gy = self.get_retained_inputs()
        ggW, = grad_outputs
        ret = []
        if 0 in indexes:
            ret.append(deconvolution_2d(gy, ggW, stride=STRIDE, pad=PAD))
        if 1 in indexes:
            ret.append(convolution_2d(x, ggW, stride=STRIDE, pad=PAD))
        return ret


class Deconvolution2D(function_node.FunctionNode):
    """``y = deconv(x, W) + b``, 4x4 stride 2 pad 1; x ``(N, A, h, w)``, W ``(A, B, 4, 4)`` -> ``(N, B, 2h, 2w)``.

    Args:
        y_grid (array or None): ``_y_side(x, path)`` when the caller already has it.
        w_taps (array or None): ``_taps(W, path)`` when the caller already has it.
        path (str or None): ``"grid"``, ``"cols"`` or ``"wino"`` (:func:`_path`); None decides from
            the shape.
    """

    def __init__(self, y_grid=None, w_taps=None, path=None):
        self._y_grid = y_grid
        self._w_taps = w_taps
        self._path = path

    def check_type_forward(self, in_types):
        _check_types(in_types, transposed=True)

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, W = inputs[:2]
        b = inputs[2] if len(inputs) == 3 else None
        N, _, h, w = x.shape
        if self._path is None:
            self._path = _path(h, w, x, W.shape[1])
        if self._y_grid is None:
            self._y_grid = _y_side(x, self._path)
        if self._w_taps is None:
            self._w_taps = _taps(W, self._path)
        Z = _scatter(self._w_taps, self._y_grid, N, h, w, self._path)
        return _from_z_side(Z, (N, W.shape[1], 2 * h, 2 * w), b, self._path),

    def backward(self, indexes, grad_outputs):
        x, W = self.get_retained_inputs()
        gy, = grad_outputs
        z = _z_side(gy.array, self._path)
        ret = []
        if 0 in indexes:
            ret.append(Convolution2D(z=z, w_taps=self._w_taps, path=self._path).apply((gy, W))[0])
        if 1 in indexes:
            ret.append(Deconvolution2DGradW(self._y_grid, z, path=self._path).apply((x, gy))[0])
        if 2 in indexes:
            ret.append(F.sum(gy, axis=(0, 2, 3)))
        return ret


class Deconvolution2DGradW(function_node.FunctionNode):
    """Weight gradient of :class:`Deconvolution2D`: ``(x, gy) -> gW (A, B, 4, 4)``."""

    def __init__(self, y_grid=None, z=None, path=None):
        self._y_grid, self._z, self._path = y_grid, z, path

    def forward(self, inputs):
        self.retain_inputs((0, 1))
        x, gy = inputs
        N, _, h, w = x.shape
        path = _path(h, w, x, gy.shape[1]) if self._path is None else self._path
        y_grid = _y_side(x, path) if self._y_grid is None else self._y_grid
        z = _z_side(gy, path) if self._z is None else self._z
        self._z = self._y_grid = None
        return _untaps(_wgrad(y_grid, z, N, h, w, path), path),

    def backward(self, indexes, grad_outputs):
        x, gy = self.get_retained_inputs()
        ggW, = grad_outputs
        ret = []
        if 0 in indexes:
            ret.append(convolution_2d(gy, ggW, stride=STRIDE, pad=PAD))
        if 1 in indexes:
            ret.append(deconvolution_2d(x, ggW, stride=STRIDE, pad=PAD))
        return ret


def _array(v):
    return v.array if isinstance(v, chainer.Variable) else v


def convolution_2d(x, W, b=None, stride=1, pad=0, **kwargs):
    """``chainer.functions.convolution_2d`` with the fast path for 4x4/stride 2/pad 1 (see module doc).

    Shapes as Chainer's: x ``(N, C, H, W)``, W ``(O, C, kh, kw)``, b ``(O,)`` or None. Falls back to
    Chainer's own function for other shapes, options (``cover_all``, ``dilate``, ``groups``),
    dtypes, or when ``chainer.config.dcgan_fast`` is False.
    """
    cover_all = kwargs.get("cover_all", False)
    xa, Wa = _array(x), _array(W)
    if (enabled() and not cover_all and kwargs.get("dilate", 1) in (1, (1, 1))
            and supported(xa.shape, Wa.shape, stride, pad, False, groups=kwargs.get("groups", 1), dtype=xa.dtype)):
        inputs = (x, W) if b is None else (x, W, b)
        return Convolution2D().apply(inputs)[0]
    return F.convolution_2d(x, W, b, stride, pad, **kwargs)


def deconvolution_2d(x, W, b=None, stride=1, pad=0, outsize=None, **kwargs):
    """``chainer.functions.deconvolution_2d`` with the fast path for 4x4/stride 2/pad 1 (see module doc).

    Shapes as Chainer's: x ``(N, C, h, w)``, W ``(C, O, kh, kw)``, b ``(O,)`` or None -> ``(N, O, 2h, 2w)``.
    Falls back to Chainer's own function otherwise, or when ``chainer.config.dcgan_fast`` is False.
    """
    xa, Wa = _array(x), _array(W)
    if (enabled() and kwargs.get("dilate", 1) in (1, (1, 1))
            and supported(xa.shape, Wa.shape, stride, pad, True, outsize, groups=kwargs.get("groups", 1),
                          dtype=xa.dtype)):
        inputs = (x, W) if b is None else (x, W, b)
        return Deconvolution2D().apply(inputs)[0]
    return F.deconvolution_2d(x, W, b, stride, pad, outsize, **kwargs)
