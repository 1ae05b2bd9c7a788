"""ChainerMN data parallelism with real MPI processes (``mpiexec -n 2``, CPU, naive communicator).

The tests launch this file under ``mpiexec`` (``python tests/training/test_distributed.py MODE OUT``); the
modes at the bottom are what each rank runs. Every launch has a timeout, so a hang fails the test.
"""
import json
import os
import shutil
import subprocess
import sys

import numpy
import pytest

HERE = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))  # tests/, where conftest.py is
REPO = os.path.dirname(HERE)
TIMEOUT = 240


def _mpiexec():
    """Path of ``mpiexec`` beside this Python (the ``mpich`` wheel) or on PATH; None if mpi4py is absent."""
    try:
        import mpi4py  # noqa: F401
    except ImportError:
        return None
    beside = os.path.join(os.path.dirname(sys.executable), "mpiexec")
    return beside if os.path.isfile(beside) else shutil.which("mpiexec")


MPIEXEC = _mpiexec()
needs_mpi = pytest.mark.skipif(MPIEXEC is None, reason="needs mpi4py and mpiexec (pip install '.[mpi]' mpich)")


def _env():
    env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg", OMP_NUM_THREADS="1",
               PYTHONPATH=os.pathsep.join([REPO, HERE, os.environ.get("PYTHONPATH", "")]))
    env.pop("CHAINERMN_FORCE_ABORT_ON_EXCEPTION", None)  # create_context installs the hook itself
    return env


def mpirun(*segments, timeout=TIMEOUT, cwd=REPO):
    """Run ``mpiexec`` with one or more ``(nprocs, wdir, argv)`` segments (MPMD); returns CompletedProcess."""
    cmd = [MPIEXEC]
    for i, (n, wdir, argv) in enumerate(segments):
        cmd += ([":"] if i else []) + ["-n", str(n), "-wdir", str(wdir), sys.executable] + [str(a) for a in argv]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, cwd=cwd, env=_env())


def _check(proc):
    assert proc.returncode == 0, "exit {}\nstdout:\n{}\nstderr:\n{}".format(
        proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:])
    return proc


def test_single_process_context():
    from chainer_dcgan.training.distributed import Context, create_context

    ctx = create_context(None)
    assert (ctx.rank, ctx.size, ctx.is_root) == (0, 1, True)
    data = [1, 2, 3]
    assert ctx.scatter(data) is data and ctx.broadcast_file("x") == "x"
    with pytest.raises(ValueError, match="mn_batchnorm needs a communicator"):
        create_context(None, mn_batchnorm=True)
    with pytest.raises(ValueError, match="mn_batchnorm"):
        Context(None, mn_batchnorm=True)


@needs_mpi
def test_communicators_copy_gradients_without_chainermn_batched_kernel():
    """ChainerMN's batched gradient copy compiles a CUDA kernel that CuPy 14 refuses (it uses an
    undeclared `half`); every communicator is made with the per-parameter copies instead."""
    proc = subprocess.run([sys.executable, "-c", (
        "import chainer_dcgan\n"
        "from chainer_dcgan.training.distributed import create_context\n"
        "ctx = create_context('naive')\n"
        "print('batched_copy', ctx.comm.get_config('batched_copy'))\n")],
        capture_output=True, text=True, timeout=120, cwd=REPO)
    assert proc.returncode == 0, proc.stderr[-2000:]
    assert "batched_copy False" in proc.stdout


@needs_mpi
@pytest.mark.parametrize("how", ["raise", "abort"])
def test_crashed_rank_ends_the_job_nonzero(tmp_path, how):
    """Rank 1 raises (the excepthook installed by create_context aborts) or calls Context.abort (what
    train_faces.py does on its errors) while rank 0 waits in a barrier: the job ends non-zero."""
    proc = mpirun((2, REPO, [__file__, "crash", tmp_path, how]), timeout=90)
    assert proc.returncode != 0
    if how == "raise":
        assert "rank 1 fails on purpose" in proc.stderr
    assert not (tmp_path / "passed_barrier").exists()


@needs_mpi
def test_first_update_matches_one_process(tmp_path):
    """Weights equal on both ranks before and after the first update; with MultiNodeBatchNormalization
    2 ranks x batch 2 equal 1 process x batch 4 on the same examples and z; plain BN differs."""
    _check(mpirun((2, REPO, [__file__, "first-update", tmp_path])))
    with open(tmp_path / "first_update.json") as f:
        r = json.load(f)
    assert r["initial_equal"] and r["setup_broadcasts"]
    assert r["mn"]["ranks_equal"] and r["plain"]["ranks_equal"]  # bitwise, after the update
    # gradients (averaged over ranks) agree with the 1-process batch-4 ones to float32 rounding,
    # except where a ReLU's input lies within rounding of zero and the two runs' summation orders
    # put it on different sides: one channel's gradient then jumps (measured with the Winograd path:
    # one of gen/dc3's 64 output channels, 5.2e-3 of its largest gradient, and what flows back from
    # it: 2 % of all elements beyond 1e-4, the rest within 1e-5; the Winograd and the grid path differ
    # by the same flip in one process). Held: such jumps stay small and rare, while per-rank
    # statistics (plain BN, below: 99 % of the elements, 3.0) change the gradients everywhere.
    assert r["mn"]["grad_rel"] < 1e-2, r
    assert r["mn"]["grad_frac_differ"] < 0.1 and r["plain"]["grad_frac_differ"] > 0.5, r
    assert r["mn"]["null_grad"] == ["dis/c1/b", "dis/c2/b", "dis/c3/b", "gen/dc1/b", "gen/dc2/b", "gen/dc3/b",
                                    "gen/l0z/b"], r
    assert r["mn"]["null_grad_max"] < 1e-4, r
    # Adam's first step is alpha * g / (|g| + eps) ~ +-alpha whatever |g|: where rounding flips the
    # sign of a near-zero component (the null gradients above, a few tiny weight-gradient elements)
    # the parameters differ by up to 2 * alpha = 4e-4; elsewhere they agree to ~1e-7
    assert r["mn"]["param_max_abs"] <= 4.01e-4, r
    assert r["mn"]["param_frac_differ"] < 1e-2, r
    assert r["plain"]["param_frac_differ"] > 0.1, r
    # per-rank statistics (plain BN) change the gradients far beyond rounding
    assert r["plain"]["grad_rel"] > 10 * r["mn"]["grad_rel"], r
    assert r["names_kept"]


@needs_mpi
def test_conditional_models_use_multi_node_statistics(tmp_path):
    """With ``mn_batchnorm`` every BatchNorm of the conditional pair (those inside the conditional
    BatchNorms too) is multi-node: G on 2 ranks x 2 examples equals G on the 4 in one process."""
    _check(mpirun((2, REPO, [__file__, "conditional-mn", tmp_path])))
    with open(tmp_path / "conditional_mn.json") as f:
        r = json.load(f)
    assert r["gen_bn"] == ["bn0l/bn", "bn1/bn", "bn2/bn", "bn3/bn"], r
    assert r["all_multi_node"], r
    assert r["mn_max_abs"] < 1e-4, r  # float32 rounding of the all-reduced sums
    assert r["plain_max_abs"] > 1e-2, r  # per-rank statistics give other faces
    assert r["loaded_equal"], r


@needs_mpi
def test_cli_conditional_two_ranks_with_multi_node_batchnorm(tmp_path):
    """``train_faces.py --conditional --mn-batchnorm`` under ``mpiexec -n 2``: the root writes a
    conditional generator that loads with its vocabulary, and rank 1 writes nothing."""
    script = os.path.join(REPO, "examples", "train_faces.py")
    argv = [script, "--conditional", "--tags", "blonde_hair,pink_hair", "--communicator", "naive",
            "--mn-batchnorm", "--synthetic-size", "8", "-b", "2", "-i", "2", "--size", "64", "--snapshot-interval",
            "100", "--display-interval", "100", "--no-progress", "--out", "out"]
    for name in ("root", "other"):
        (tmp_path / name).mkdir()
    proc = _check(mpirun((1, tmp_path / "root", argv), (1, tmp_path / "other", argv)))
    assert proc.stdout.count("conditional on 2 tags: blonde_hair, pink_hair") == 1
    assert not [p for p in (tmp_path / "other").rglob("*") if p.is_file()]
    from chainer_dcgan.models.serialization import load_generator

    gen = load_generator(str(tmp_path / "root" / "out" / "gen_iter_2.npz"))
    assert gen.tags == ["blonde_hair", "pink_hair"] and gen.size == 64


@needs_mpi
def test_cli_two_ranks_root_writes_and_resume_replays(tmp_path):
    """``examples/train_faces.py`` under ``mpiexec -n 2``: rank 0 alone writes; 1 + 1 iterations
    with ``--resume`` between give the same weights as 2 straight."""
    script = os.path.join(REPO, "examples", "train_faces.py")
    common = ["--communicator", "naive", "--mn-batchnorm", "--synthetic-size", "4", "-b", "2", "--seed", "4",
              "--snapshot-interval", "100", "--display-interval", "100", "--no-progress", "--out", "out"]
    for name in ("straight_root", "split_root", "straight_other", "split_other"):
        (tmp_path / name).mkdir()

    def run(kind, *extra):
        # rank 0 works in KIND_root, rank 1 in KIND_other: a relative --out shows who writes what
        argv = [script] + common + list(extra)
        return _check(mpirun((1, tmp_path / (kind + "_root"), argv), (1, tmp_path / (kind + "_other"), argv)))

    straight = run("straight", "-i", "2")
    assert straight.stdout.count("2 process(es)") == 1  # one header, from the root
    out = tmp_path / "straight_root" / "out"
    assert {"snapshot_iter_2", "gen_iter_2.npz", "dis_iter_2.npz"} <= set(os.listdir(out))
    assert not [p for p in (tmp_path / "straight_other").rglob("*") if p.is_file()]  # rank 1 wrote nothing

    run("split", "-i", "1")
    resumed = run("split", "-i", "2", "--resume")  # rank 1 reads the root's snapshot through MPI
    assert not [p for p in (tmp_path / "split_other").rglob("*") if p.is_file()]
    for name in ("gen_iter_2.npz", "dis_iter_2.npz"):
        with numpy.load(out / name) as a, numpy.load(tmp_path / "split_root" / "out" / name) as b:
            assert sorted(a.files) == sorted(b.files)
            for key in a.files:
                assert numpy.array_equal(a[key], b[key]), (name, key, resumed.stdout)
    # the snapshot carries both ranks' iterator and random state
    with numpy.load(out / "snapshot_iter_2") as snap:
        assert int(snap["extensions/rank_states/size"]) == 2
        assert any(k.startswith("extensions/rank_states/rank1/iterator/") for k in snap.files)


# ---- what each rank runs under mpiexec ----------------------------------------------------------------


class _FixedZ:
    """Stands in for the updater's RandomState: hands out the given z (and no flips are asked for)."""

    def __init__(self, z):
        self.z = z

    def uniform(self, low=0.0, high=1.0, size=None):
        assert tuple(size) == self.z.shape, (size, self.z.shape)
        return self.z


def _one_update(context, x, z):
    """Parameters and gradients of G and D after one DCGANUpdater step on batch ``x`` with latent ``z``."""
    import chainer

    from chainer_dcgan.training.distributed import resolve_device
    from chainer_dcgan.training import make_optimizer, seeded_models
    from chainer_dcgan.training.updater import DCGANUpdater

    gen, dis = seeded_models(7)
    gen, dis = context.model(gen), context.model(dis)
    initial = _flat(gen, dis)[0]
    iterator = chainer.iterators.SerialIterator(list(x), len(x), shuffle=False)
    optimizers = {"gen": make_optimizer(gen, context), "dis": make_optimizer(dis, context)}
    updater = DCGANUpdater(iterator, optimizers, device=resolve_device(-1), flip=False)
    updater.random_state = _FixedZ(z)
    updater.update()
    params, grads = _flat(gen, dis)
    return initial, params, grads, gen


def _flat(gen, dis):
    params, grads = {}, {}
    for prefix, link in (("gen", gen), ("dis", dis)):
        for name, p in link.namedparams():
            params[prefix + name] = p.array.copy()
            grads[prefix + name] = None if p.grad is None else p.grad.copy()
    return params, grads


def _compare(params, grads, ref_params, ref_grads):
    """Agreement of one update with the reference update.

    Returns a dict: ``param_max_abs`` (largest parameter difference), ``param_frac_differ`` (fraction
    of elements differing by more than 1e-6) and ``grad_rel`` (largest gradient difference relative to
    the largest component of the same array), the latter over arrays whose exact gradient is not zero:
    the biases of layers followed by BatchNormalization (``l0z/b``, ``dc1-3/b``, ``c1-3/b``) have zero
    gradient in exact arithmetic, so theirs is rounding noise (< 1e-4, reported as ``null_grad_max``);
    ``grad_frac_differ``, over the same arrays, the fraction of elements differing by more than 1e-4
    of their array's largest component.
    """
    null = {k for k in ref_grads if numpy.abs(ref_grads[k]).max() < 1e-4}
    n = sum(v.size for v in params.values())
    return {
        "param_max_abs": max(float(numpy.abs(params[k] - ref_params[k]).max()) for k in params),
        "param_frac_differ": sum(int((numpy.abs(params[k] - ref_params[k]) > 1e-6).sum()) for k in params) / n,
        "grad_rel": max(float(numpy.abs(grads[k] - ref_grads[k]).max() / numpy.abs(ref_grads[k]).max())
                        for k in grads if k not in null),
        "grad_frac_differ": sum(int((numpy.abs(grads[k] - ref_grads[k]) > 1e-4 * numpy.abs(ref_grads[k]).max()).sum())
                                for k in grads if k not in null) / sum(grads[k].size for k in grads if k not in null),
        "null_grad": sorted(null),
        "null_grad_max": max(float(numpy.abs(grads[k]).max()) for k in null),
    }


def _mode_first_update(out):
    import io

    import chainer

    from chainer_dcgan.datasets import SyntheticFaces
    from chainer_dcgan.training.distributed import Context, create_context
    from chainer_dcgan.models import Generator

    ctx = create_context("naive", mn_batchnorm=True)
    comm, b = ctx.comm, 2
    data = SyntheticFaces(2 * b, seed=5)
    x_all = numpy.stack([data[i] for i in range(2 * b)])
    z_all = numpy.random.RandomState(11).uniform(-1, 1, (2 * b, 100)).astype(numpy.float32)
    mine = slice(ctx.rank * b, (ctx.rank + 1) * b)

    result = {}
    for key, context in (("mn", ctx), ("plain", Context(comm, mn_batchnorm=False))):
        initial, params, grads, gen = _one_update(context, x_all[mine], z_all[mine])
        everyone = comm.gather_obj((initial, params, grads))
        if ctx.is_root:
            result.setdefault("initial_equal", all(
                numpy.array_equal(everyone[0][0][k], everyone[1][0][k]) for k in initial))
            result[key] = {"ranks_equal": all(numpy.array_equal(everyone[0][1][k], everyone[1][1][k])
                                              for k in params)}
            result[key]["_state"] = (params, grads)
        if key == "mn" and ctx.is_root:
            # the multi-node Generator's weights load into a plain one, name for name
            buf = io.BytesIO()
            chainer.serializers.save_npz(buf, gen)
            buf.seek(0)
            plain = Generator()
            chainer.serializers.load_npz(buf, plain)
            result["names_kept"] = sorted(n for n, _ in plain.namedparams()) == sorted(
                n for n, _ in gen.namedparams()) and all(
                numpy.array_equal(dict(plain.namedparams())[n].array, p.array) for n, p in gen.namedparams())

    # models built differently on each rank are made equal when the optimizer is set up
    from chainer_dcgan.training import make_optimizer, seeded_models

    gen = seeded_models(100 + ctx.rank)[0]
    make_optimizer(gen, ctx)
    everyone = comm.gather_obj(_flat(gen, gen)[0])
    if ctx.is_root:
        result["setup_broadcasts"] = all(numpy.array_equal(everyone[0][k], everyone[1][k]) for k in everyone[0])

    if ctx.is_root:
        _, ref_params, ref_grads, _ = _one_update(Context(), x_all, z_all)  # 1 process, batch 2b
        for key in ("mn", "plain"):
            params, grads = result[key].pop("_state")
            result[key].update(_compare(params, grads, ref_params, ref_grads))
        with open(os.path.join(out, "first_update.json"), "w") as f:
            json.dump(result, f, indent=1)
    comm.mpi_comm.barrier()


def _mode_conditional_mn(out):
    import chainer

    from chainer_dcgan.training.distributed import Context, create_context
    from chainer_dcgan.models import ConditionalGenerator
    from chainer_dcgan.models.serialization import load_generator, save_model
    from chainer_dcgan.training import seeded_models

    tags = ["blonde_hair", "blue_hair", "smile"]
    ctx = create_context("naive", mn_batchnorm=True)
    comm, b = ctx.comm, 2
    rs = numpy.random.RandomState(3)
    z_all = rs.uniform(-1, 1, (2 * b, 100)).astype(numpy.float32)
    y_all = (rs.uniform(size=(2 * b, len(tags))) < 0.5).astype(numpy.float32)
    mine = slice(ctx.rank * b, (ctx.rank + 1) * b)

    def forward(context, z, y):
        gen, dis = (context.model(m) for m in seeded_models(5, tags, size=64))
        for bn in (gen.bn0l, gen.bn1, gen.bn2, gen.bn3):  # tag offsets as training leaves them
            bn.gamma_y.array[:] = numpy.random.RandomState(1).normal(0, 0.5, bn.gamma_y.shape)
            bn.beta_y.array[:] = numpy.random.RandomState(2).normal(0, 0.5, bn.beta_y.shape)
        with chainer.using_config("train", True):
            return gen, dis, gen(z, y).array

    gen, dis, mn = forward(ctx, z_all[mine], y_all[mine])
    plain = forward(Context(comm, mn_batchnorm=False), z_all[mine], y_all[mine])[2]
    norms = [(prefix + name.lstrip("/"), link) for prefix, model in (("", gen), ("dis/", dis))
             for name, link in model.namedlinks() if hasattr(link, "avg_mean")]  # every normalisation
    everyone = comm.gather_obj((mn, plain))
    if ctx.is_root:
        one = forward(Context(), z_all, y_all)[2]  # 1 process, batch 2b
        path = os.path.join(out, "gen.npz")
        save_model(path, gen)
        loaded = load_generator(path)
        with chainer.using_config("train", False):
            equal = isinstance(loaded, ConditionalGenerator) and numpy.array_equal(
                loaded(z_all[:b], y_all[:b]).array, gen(z_all[:b], y_all[:b]).array)
        result = {
            "gen_bn": sorted(name for name, _ in norms if not name.startswith("dis/")),
            "all_multi_node": all(type(link).__name__ == "MultiNodeBatchNormalization" for _, link in norms),
            "mn_max_abs": float(numpy.abs(numpy.concatenate([e[0] for e in everyone]) - one).max()),
            "plain_max_abs": float(numpy.abs(numpy.concatenate([e[1] for e in everyone]) - one).max()),
            "loaded_equal": bool(equal),
        }
        with open(os.path.join(out, "conditional_mn.json"), "w") as f:
            json.dump(result, f, indent=1)
    comm.mpi_comm.barrier()


def _mode_crash(out, how):
    from chainer_dcgan.training.distributed import create_context

    ctx = create_context("naive")
    if ctx.rank == 1:
        if how == "abort":
            ctx.abort(3)
        raise RuntimeError("rank 1 fails on purpose")
    ctx.comm.mpi_comm.barrier()  # without the abort this waits forever
    open(os.path.join(out, "passed_barrier"), "w").close()


if __name__ == "__main__":
    import chainer_dcgan  # noqa: F401  (the chainer shims, before chainer)

    {"first-update": _mode_first_update, "conditional-mn": _mode_conditional_mn,
     "crash": _mode_crash}[sys.argv[1]](*sys.argv[2:])
