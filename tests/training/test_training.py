import os
import re

import chainer
import numpy
import pytest

from chainer_dcgan.datasets import SyntheticFaces
from chainer_dcgan.training import build_trainer, newest_snapshot, resume
from chainer_dcgan.training.distributed import resolve_device
from conftest import run_script


def _trainer(out, iterations, data, seed=3, batchsize=4, snapshot_interval=2, **kwargs):
    return build_trainer(data, str(out), (iterations, "iteration"), resolve_device(-1), batchsize=batchsize,
                         seed=seed, snapshot_interval=snapshot_interval, display_interval=1,
                         preview_shape=(2, 3), progress=False, **kwargs)


def _params(trainer):
    updater = trainer.updater
    return {prefix + name: p.array.copy()
            for prefix, link in (("gen", updater.generator), ("dis", updater.discriminator))
            for name, p in link.namedparams()}


def test_resume_replays_a_straight_run(tmp_path):
    """N iterations, a snapshot, N more after resuming == 2N straight (epochs cross: 10 examples, batch 4).
    At 64 px for speed; the CLI's resume tests (test_resume.py) train at 96 px."""
    data = SyntheticFaces(10, seed=1, size=64)
    straight = _trainer(tmp_path / "straight", 4, data, size=64)
    straight.run()

    first = _trainer(tmp_path / "split", 2, data, size=64)
    first.run()
    snapshot = newest_snapshot(tmp_path / "split")
    assert os.path.basename(snapshot) == "snapshot_iter_2"
    second = _trainer(tmp_path / "split", 4, data, size=64)
    resume(second, snapshot)
    assert second.updater.iteration == 2
    assert second.updater.get_optimizer("gen").t == 2  # Adam's step count came back
    second.run()

    a, b = _params(straight), _params(second)
    assert a.keys() == b.keys()
    for name in a:
        assert numpy.array_equal(a[name], b[name]), name
    it_a, it_b = straight.updater.get_iterator("main"), second.updater.get_iterator("main")
    assert it_a.epoch == it_b.epoch and it_a.current_position == it_b.current_position
    # the sample grids of the resumed run continue the straight run's sequence of z
    grids = sorted(os.listdir(tmp_path / "straight" / "preview"))
    assert grids == ["image_iter_%08d.png" % i for i in (1, 2, 3, 4)]
    with open(tmp_path / "straight" / "preview" / grids[-1], "rb") as f1, \
            open(tmp_path / "split" / "preview" / grids[-1], "rb") as f2:
        assert f1.read() == f2.read()


def test_outputs_are_written(tmp_path):
    trainer = _trainer(tmp_path, 3, SyntheticFaces(8, seed=0), snapshot_interval=2)
    trainer.run()
    names = set(os.listdir(tmp_path))
    # a snapshot at the interval and at the end
    assert {"snapshot_iter_2", "snapshot_iter_3", "gen_iter_3.npz", "dis_iter_3.npz", "log", "loss.png"} <= names
    assert not [n for n in names if n.startswith(".") or n.startswith("tmp")]  # no temp files left
    from PIL import Image
    with Image.open(tmp_path / "preview" / "image_iter_00000003.png") as img:
        assert img.size == (3 * 96, 2 * 96)


def test_the_last_iteration_draws_a_grid_and_the_snapshot_keeps_its_layout(tmp_path):
    """A run that stops between two grid intervals still ends with its last grid (make demo shows it);
    the grid's trigger is stored as the plain interval trigger it was, so older snapshots resume."""
    trainer = _trainer(tmp_path, 3, SyntheticFaces(4, size=64), size=64, snapshot_interval=2,
                       preview_interval=2, statistics=False)
    trainer.run()
    assert sorted(os.listdir(tmp_path / "preview")) == ["image_iter_00000002.png", "image_iter_00000003.png"]
    with numpy.load(tmp_path / "snapshot_iter_3") as snapshot:
        grid_keys = sorted(k for k in snapshot.files if k.startswith("extension_triggers/SampleGrid/"))
    assert grid_keys == ["extension_triggers/SampleGrid/previous_epoch_detail",
                         "extension_triggers/SampleGrid/previous_iteration"]


def test_resume_missing_snapshot_is_named(tmp_path):
    trainer = _trainer(tmp_path, 1, SyntheticFaces(4))
    with pytest.raises(FileNotFoundError, match="nope"):
        resume(trainer, str(tmp_path / "nope"))


def test_cpu_device_and_bad_gpu_message():
    assert resolve_device(-1).xp is numpy
    try:
        import cupy  # noqa: F401
        has_cupy = True
    except Exception:
        has_cupy = False
    if not has_cupy:
        with pytest.raises(ValueError, match="^gpu 0: cannot use this device"):
            resolve_device(0)


def test_short_training_learns(tmp_path):
    """A short run on the embedded data moves the generated colour statistics (per-channel mean, std
    and histograms) towards the data's; a broken updater (G not learning, or learning away from the
    data) fails this. At 64 px for speed: 1.64 at start, 1.15 after 60 iterations of batch 8."""
    from chainer_dcgan.models import generate
    from chainer_dcgan.models import sample_z
    from chainer_dcgan.evaluation.statistics import statistics_distance

    data = SyntheticFaces(400, seed=0, cache=True, size=64)
    real = numpy.stack([data[i] for i in range(100, 164)])
    trainer = build_trainer(data, str(tmp_path), (60, "iteration"), resolve_device(-1), batchsize=8, seed=0,
                            snapshot_interval=1000, display_interval=1000, progress=False, statistics=False,
                            size=64)
    gen = trainer.updater.generator
    z = sample_z(64, random_state=9)
    before = statistics_distance(generate(gen, z), real, parts=("colour",))
    trainer.run()
    after = statistics_distance(generate(gen, z), real, parts=("colour",))
    print("colour statistics distance before %.3f after %.3f" % (before, after))
    assert after < 0.85 * before


def test_train_faces_cli_runs_and_resumes(tmp_path):
    out = tmp_path / "run"
    args = ["--out", out, "--iteration", 2, "--batchsize", 4, "--synthetic-size", 20, "--snapshot-interval", 1,
            "--display-interval", 1, "--preview-interval", 1000, "--no-progress"]
    proc = run_script("examples/train_faces.py", *args)
    assert "gen/loss" in proc.stdout
    assert (out / "snapshot_iter_2").exists()
    args[3] = 3
    run_script("examples/train_faces.py", *args, "--resume")
    assert (out / "gen_iter_3.npz").exists()
    grid = tmp_path / "grid.png"
    run_script("examples/generate.py", out / "gen_iter_3.npz", "--out", grid, "--rows", 2, "--cols", 3)
    from PIL import Image
    with Image.open(grid) as img:
        assert img.size == (3 * 96, 2 * 96)


def test_train_faces_cli_errors_are_clear(tmp_path):
    proc = run_script("examples/train_faces.py", "--dataset", tmp_path / "absent", "--out", tmp_path, check=False)
    assert proc.returncode != 0 and "absent" in proc.stderr
    proc = run_script("examples/train_faces.py", "--out", tmp_path, "--resume", check=False)
    assert proc.returncode != 0 and "--resume" in proc.stderr
    proc = run_script("examples/train_faces.py", "--batchsize", 0, check=False)
    assert proc.returncode == 2 and "batchsize" in proc.stderr
    for flag, value in (("--size", 100), ("--lr-gen", 0), ("--ema", 1.5)):
        proc = run_script("examples/train_faces.py", flag, value, check=False)
        assert proc.returncode == 2 and flag in proc.stderr and "Traceback" not in proc.stderr


def test_train_faces_cli_at_64_px_with_the_recipe_flags(tmp_path):
    out = tmp_path / "run"
    proc = run_script("examples/train_faces.py", "--out", out, "--iteration", 2, "--batchsize", 2,
                      "--synthetic-size", 4, "--size", 64, "--spectral-norm", "--lr-gen", "1e-4", "--lr-dis", "4e-4",
                      "--ema", "0.9", "--loss", "hinge", "--display-interval", 1, "--no-progress")
    assert "recipe: size 64 px, loss hinge, spectral norm on, lr gen 0.0001 dis 0.0004, ema 0.9" in proc.stdout
    # how the CPU does the work: the products split over the loops' threads (a training process)
    assert re.search(r"^cpu: products through .*split over the loops' threads.*; loops: .*; layers: Winograd F\(2x2, 2x2\) on even sides; malloc", proc.stdout,
                     re.M), proc.stdout
    from chainer_dcgan.models.serialization import load_generator
    assert load_generator(str(out / "gen_ema_iter_2.npz")).size == 64
    from PIL import Image
    with Image.open(out / "preview" / "image_iter_00000002.png") as img:
        assert img.size == (10 * 64, 10 * 64)


def test_128_px_with_the_modern_recipe_runs_snapshots_and_resumes(tmp_path):
    """As test_resume_replays_a_straight_run, at 128 px with spectral norm, hinge, two learning rates
    and the moving average: the averaged generator resumes exactly too and is written as its own npz."""
    from chainer_dcgan.models.serialization import load_generator, read_meta

    data = SyntheticFaces(6, seed=2, size=128)
    recipe = dict(size=128, spectral_norm=True, loss="hinge", lr_gen=1e-4, lr_dis=4e-4, ema=0.5,
                  batchsize=2, statistics=False, ema_refresh_batches=2)
    recipe["snapshot_interval"] = 1000  # one snapshot per run (the last): snapshots of 15M weights are slow
    straight = _trainer(tmp_path / "straight", 2, data, **recipe)
    straight.run()
    first = _trainer(tmp_path / "split", 1, data, **recipe)
    first.run()
    second = _trainer(tmp_path / "split", 2, data, **recipe)
    resume(second, newest_snapshot(tmp_path / "split"))
    assert second.updater.iteration == 1
    second.run()
    a, b = _params(straight), _params(second)
    for name in a:
        assert numpy.array_equal(a[name], b[name]), name
    assert second.updater.get_optimizer("dis").alpha == 4e-4 and second.updater.get_optimizer("gen").alpha == 1e-4
    names = set(os.listdir(tmp_path / "split"))
    assert {"gen_iter_2.npz", "dis_iter_2.npz", "gen_ema_iter_2.npz", "snapshot_iter_2"} <= names
    ema = {run: load_generator(str(tmp_path / run / "gen_ema_iter_2.npz")) for run in ("straight", "split")}
    raw = load_generator(str(tmp_path / "split" / "gen_iter_2.npz"))
    assert ema["split"].size == 128 and read_meta(str(tmp_path / "split" / "dis_iter_2.npz"))["config"] == {
        "activation": "elu", "size": 128, "spectral_norm": True}
    for (name, p), (_, q), (_, r) in zip(sorted(ema["straight"].namedparams()), sorted(ema["split"].namedparams()),
                                         sorted(raw.namedparams())):
        assert numpy.array_equal(p.array, q.array), name
    assert not numpy.allclose(ema["split"].dc1.W.array, raw.dc1.W.array, rtol=0, atol=1e-7)
    from PIL import Image
    with Image.open(tmp_path / "split" / "preview" / "image_iter_00000002.png") as img:
        assert img.size == (3 * 128, 2 * 128)


def test_examples_of_another_size_are_refused(tmp_path):
    with pytest.raises(ValueError, match="96x96 px but the models are built for 128 px"):
        _trainer(tmp_path, 1, SyntheticFaces(4), size=128)
