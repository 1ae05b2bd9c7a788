"""chainer 7.8.1 on today's stacks: ``import chainer`` works first, through the installed startup hook
(``chainer_dcgan_shims.pth`` -> ``_chainer_dcgan_shims``), and the GPU hint names the right install."""
import importlib.metadata
import os
import subprocess
import sys
import sysconfig
import zipfile

import numpy
import pytest

import _chainer_dcgan_shims
from _chainer_dcgan_shims import patches
from chainer_dcgan import _compat
from conftest import REPO

PTH = "chainer_dcgan_shims.pth"

#: chainer first, then everything the issue names, under -W error::DeprecationWarning.
CHAINER_FIRST = """
import sys
import chainer, chainer.functions as F, chainer.links, chainer.training, chainer.testing
import chainer.gradient_check, chainermn, onnx_chainer, numpy
import chainer.links.caffe, chainer.exporters.caffe  # protoc 3 output, after onnx chose protobuf's backend
x = numpy.zeros((2, 3, 8, 8), numpy.float32)
F.as_strided(x, (2,), (4,))  # reads numpy.sctypes, gone in numpy 2
it = chainer.iterators.MultiprocessIterator(list(range(8)), 2, n_processes=1, shuffle=False)
assert it.next() == [0, 1]  # starts a thread through Thread.setDaemon
it.finalize()
stand_in = sys.modules.get("pkg_resources")
assert stand_in is None or "chainer-dcgan" not in (stand_in.__doc__ or ""), "stand-in leaked"
import chainer_dcgan
print("ok", chainer.__version__, chainer._environment_check.__spec__.origin)
"""


def _clean_env():
    """The environment without PYTHONPATH, so only what is installed is imported."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def _installed_files():
    """The files of chainer-dcgan as installed in this interpreter's site-packages (its RECORD)."""
    for dist in importlib.metadata.distributions(path=[sysconfig.get_paths()["purelib"]]):
        if dist.metadata["Name"] == "chainer-dcgan":
            return [str(f) for f in dist.files or []]
    pytest.skip("chainer-dcgan is not installed in this interpreter (make venv installs it)")


def test_install_carries_the_startup_hook():
    assert PTH in _installed_files(), (
        "this interpreter's chainer-dcgan was installed before the startup hook existed: "
        "reinstall it (make venv, or pip install -e .)")


def test_chainer_imports_first_in_this_environment():
    if PTH not in _installed_files():
        pytest.skip("no startup hook installed here (see test_install_carries_the_startup_hook)")
    proc = subprocess.run([sys.executable, "-W", "error::DeprecationWarning", "-c", CHAINER_FIRST],
                          capture_output=True, text=True, timeout=300, env=_clean_env(), cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.startswith("ok 7.8.1 ") and proc.stdout.strip().endswith("_chainer_dcgan_shims/patches.py")


def test_startup_hook_imports_nothing_heavy():
    """With the hook active, ``python -c pass`` imports our finder and nothing of numpy or chainer."""
    if PTH not in _installed_files():
        pytest.skip("no startup hook installed here")
    proc = subprocess.run([sys.executable, "-X", "importtime", "-c", "pass"], capture_output=True, text=True,
                          timeout=60, env=_clean_env(), cwd="/")
    assert proc.returncode == 0, proc.stderr[-2000:]
    imported = {line.rsplit("|", 1)[-1].strip() for line in proc.stderr.splitlines() if "|" in line}
    assert "_chainer_dcgan_shims" in imported
    heavy = {"numpy", "chainer", "chainer_dcgan", "_chainer_dcgan_shims.patches", "importlib.metadata", "packaging"}
    assert not heavy & imported, heavy & imported


def test_wheel_installs_the_hook_at_the_top_of_site_packages(tmp_path):
    """``pip install .`` (a wheel): the .pth and its module land in site-packages, and a Python that
    reads only that folder (plus this one for chainer itself) imports chainer first."""
    proc = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "--no-build-isolation",
                           "--no-index", "-w", str(tmp_path / "dist"), REPO],
                          capture_output=True, text=True, timeout=300, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    (wheel,) = (tmp_path / "dist").glob("chainer_dcgan-*.whl")
    with zipfile.ZipFile(wheel) as zf:
        names = zf.namelist()
        assert zf.read(PTH).decode() == "import _chainer_dcgan_shims; _chainer_dcgan_shims.register()\n"
    assert "_chainer_dcgan_shims/__init__.py" in names and "_chainer_dcgan_shims/patches.py" in names and "chainer_dcgan/__init__.py" in names
    from chainer_dcgan.models import pretrained  # every shipped model travels in the wheel (setup.py's package_data)
    assert {"chainer_dcgan/models/pretrained/{}/generator.npz".format(n) for n in pretrained.names()} <= set(names)
    site_dir = tmp_path / "site"
    proc = subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                           "--target", str(site_dir), str(wheel)],
                          capture_output=True, text=True, timeout=300, env=_clean_env())
    assert proc.returncode == 0, proc.stderr[-3000:]
    # -S: no site-packages and no .pth of this interpreter; then the wheel's folder the way site reads it
    script = ("import site, sys; site.addsitedir({!r}); sys.path.append({!r})\n".format(
        str(site_dir), sysconfig.get_paths()["purelib"]) + CHAINER_FIRST)
    proc = subprocess.run([sys.executable, "-S", "-W", "error::DeprecationWarning", "-c", script],
                          capture_output=True, text=True, timeout=300, env=_clean_env(), cwd="/")
    assert proc.returncode == 0, proc.stderr[-3000:]
    assert proc.stdout.strip().endswith(str(site_dir / "_chainer_dcgan_shims" / "patches.py"))


def test_sctypes_present_for_chainer():
    assert set(numpy.sctypes) >= {"int", "uint", "float"}


def test_register_is_idempotent():
    _compat.install()
    _chainer_dcgan_shims.register()
    assert sum(isinstance(f, _chainer_dcgan_shims.ShimFinder) for f in sys.meta_path) == 1
    import chainer

    assert chainer.__version__ == "7.8.1"


def test_with_requires_answers_from_installed_metadata():
    """chainer.testing's decorators, over the pkg_resources stand-in: skip exactly when unmet."""
    from chainer import testing

    def marked(*requirements):
        return getattr(testing.with_requires(*requirements)(lambda: None), "__unittest_skip__", False)

    assert not marked("numpy>=1.26")
    assert marked("numpy<1")
    assert marked("surely-not-an-installed-distribution")
    assert not marked("chainer==7.8.1", "numpy")


def test_installed_versions_reads_metadata():
    found = dict(patches.installed_versions(["numpy", "surely-not-installed"]))
    assert found == {"numpy": numpy.__version__}


@pytest.mark.parametrize("driver, extra", [(580, "cuda13"), (590, "cuda13"), (575, "cuda12"), (525, "cuda12")])
def test_gpu_hint_names_the_extra_the_driver_supports(driver, extra):
    hint = _compat.gpu_install_hint(installed=[], driver=driver)
    assert "pip install '.[{}]'".format(extra) in hint and str(driver) in hint


def test_gpu_hint_without_driver_or_with_an_old_one():
    hint = _compat.gpu_install_hint(installed=[], driver=None)
    assert "'.[cuda13]'" in hint and "'.[cuda12]'" in hint
    assert "update the driver" in _compat.gpu_install_hint(installed=[], driver=470)


def test_gpu_hint_when_cupy_is_installed_but_sees_no_gpu():
    hint = _compat.gpu_install_hint(installed=[("cupy-cuda13x", "14.2.0")], driver=None)
    assert "cupy-cuda13x 14.2.0 is installed but cannot use a GPU" in hint
    assert "do not install a second CuPy" in hint and "pip install" not in hint
    two = _compat.gpu_install_hint(installed=[("cupy-cuda12x", "13.6.0"), ("cupy-cuda13x", "14.2.0")], driver=580)
    assert "uninstall all but one" in two and "cupy-cuda12x 13.6.0" in two


def test_driver_version_from_the_proc_file(tmp_path):
    path = tmp_path / "version"
    path.write_text("NVRM version: NVIDIA UNIX Open Kernel Module for x86_64  580.159.03  Release Build  "
                    "(dvs-builder@U22-I3-AF03-09-1)  Wed Oct 1 2025\nGCC version:  gcc version 12.3.0\n")
    assert _compat.driver_version(str(path)) == 580
    assert _compat.driver_version(str(tmp_path / "absent")) is None


def test_gpu_error_of_the_command_lines_carries_the_hint():
    """``--gpu 0`` where CuPy cannot give a GPU: the ValueError ends with this machine's hint."""
    from chainer_dcgan.training.distributed import resolve_device

    try:
        import cupy

        if cupy.cuda.runtime.getDeviceCount() > 0:
            pytest.skip("a GPU is usable here")
    except Exception:  # noqa: BLE001 - no CuPy, or CuPy without a driver
        pass
    with pytest.raises(ValueError, match="^gpu 0: cannot use this device") as info:
        resolve_device(0)
    assert str(info.value).endswith(_compat.gpu_install_hint())
