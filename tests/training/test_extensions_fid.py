"""The FID trainer extension: values reach LogReport (and PlotReport) during a short run."""
import json
import os

import chainer
import numpy
import pytest

from chainer_dcgan.datasets import SyntheticFaces
from chainer_dcgan.training import build_trainer
from chainer_dcgan.training.extensions.fid import FIDEvaluation, add_fid_evaluation

pytestmark = pytest.mark.timeout(300)


def test_fid_reaches_the_log(tmp_path, inception_extractor):
    dataset = SyntheticFaces(12, seed=0)
    trainer = build_trainer(dataset, str(tmp_path), (2, "iteration"), chainer.get_device("@numpy"),
                            batchsize=4, display_interval=2, progress=False, statistics=False)
    gen = trainer.updater.get_optimizer("gen").target
    add_fid_evaluation(trainer, gen, dataset, interval=2, n=6, extractor=inception_extractor, cache=False)
    trainer.run()
    with open(os.path.join(str(tmp_path), "log")) as f:
        log = json.load(f)
    assert log[-1]["iteration"] == 2
    for key in FIDEvaluation.keys:
        assert numpy.isfinite(log[-1][key]), key
    assert log[-1]["fid"] > 0 and 0 <= log[-1]["precision"] <= 1
    if chainer.training.extensions.PlotReport.available():
        assert os.path.isfile(os.path.join(str(tmp_path), "fid.png"))


def test_fid_evaluation_needs_enough_samples():
    with pytest.raises(ValueError, match="n >= 6"):
        FIDEvaluation(None, [], n=5)


def test_missing_weights_fail_before_training(tmp_path, monkeypatch):
    from chainer_dcgan.evaluation import inception

    monkeypatch.setenv(inception.ENV_CACHE, str(tmp_path))
    monkeypatch.delenv(inception.ENV_WEIGHTS, raising=False)
    monkeypatch.setattr(inception, "_installed_package_weights", lambda: None)
    with pytest.raises(FileNotFoundError, match="fetch_inception.py"):
        FIDEvaluation(None, [], n=10)


def test_train_faces_fid_flag_without_weights_says_how_to_get_them(tmp_path):
    from conftest import run_script

    proc = run_script("examples/train_faces.py", "--fid-interval", 1, "--out", tmp_path / "run", "--iteration", 1,
                      "--synthetic-size", 8, "--batchsize", 4, "--no-progress", check=False,
                      env={"CHAINER_DCGAN_CACHE": str(tmp_path / "empty"), "CHAINER_DCGAN_INCEPTION": "",
                           "XDG_CACHE_HOME": str(tmp_path / "xdg")})
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "fetch_inception.py" in proc.stderr
    assert not (tmp_path / "run" / "snapshot_iter_1").exists()
