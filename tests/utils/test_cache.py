"""One cache folder for the whole package (chainer_dcgan.utils.cache), moved by $CHAINER_DCGAN_CACHE:
the face cascade, the InceptionV3 weights and the FID statistics all live below it."""
import os

from chainer_dcgan.collection import faces
from chainer_dcgan.evaluation import inception, metrics
from chainer_dcgan.utils.cache import ENV_CACHE, cache_dir


def test_the_environment_variable_wins_then_xdg_then_home(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE, str(tmp_path / "mine"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert cache_dir() == str(tmp_path / "mine")
    assert cache_dir("a", "b.txt") == str(tmp_path / "mine" / "a" / "b.txt")
    monkeypatch.setenv(ENV_CACHE, "")  # empty is unset
    assert cache_dir("a") == str(tmp_path / "xdg" / "chainer_dcgan" / "a")
    monkeypatch.delenv(ENV_CACHE)
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert cache_dir() == str(tmp_path / "home" / ".cache" / "chainer_dcgan")
    assert not os.path.exists(tmp_path / "home")  # asking creates nothing


def test_every_cached_thing_lives_below_the_one_folder(tmp_path, monkeypatch):
    monkeypatch.setenv(ENV_CACHE, str(tmp_path))
    assert faces.default_cascade_path() == str(tmp_path / faces.CASCADE_NAME)
    assert inception.default_weights_path() == str(tmp_path / "inception" / inception.WEIGHTS_NAME)
    assert metrics.stats_cache_dir() == str(tmp_path / "fid_stats")
    assert faces.cache_dir is inception.cache_dir is cache_dir and inception.ENV_CACHE == ENV_CACHE
