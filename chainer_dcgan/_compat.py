"""chainer 7.8.1 on today's stacks, and what to install for a GPU.

The shims themselves live in the top-level package ``_chainer_dcgan_shims`` (installed with a
``.pth`` file so that ``import chainer`` works first); :func:`install` registers them for the
cases where that file did not run (a checkout on ``PYTHONPATH``, ``python -S``).
"""
import _chainer_dcgan_shims
from _chainer_dcgan_shims import patches

#: The pip extra of this project for each CUDA major version, and the oldest Linux driver for it.
GPU_EXTRAS = {13: ("cuda13", 580), 12: ("cuda12", 525)}

DRIVER_VERSION_FILE = "/proc/driver/nvidia/version"


def install():
    """Register the chainer shims (idempotent); importing ``chainer_dcgan`` does this."""
    _chainer_dcgan_shims.register()


def driver_version(path=DRIVER_VERSION_FILE):
    """The NVIDIA kernel driver's major version (int) read from ``path``, or None without one."""
    try:
        with open(path, encoding="utf-8", errors="replace") as f:
            text = f.read()
    except OSError:
        return None
    for word in text.split():
        head = word.split(".")[0]
        if "." in word and head.isdigit():
            return int(head)
    return None


def gpu_install_hint(installed=None, driver=None):
    """One sentence saying what to do when CuPy cannot give a GPU.

    Args:
        installed: ``[(distribution, version)]`` of the CuPy packages installed; None reads them.
        driver: the NVIDIA driver's major version; None reads :data:`DRIVER_VERSION_FILE`.
    """
    if installed is None:
        installed = patches.installed_versions(patches.CUPY_PACKAGES)
    if driver is None:
        driver = driver_version()
    if len(installed) > 1:
        return "several CuPy packages are installed ({}): uninstall all but one".format(
            ", ".join("{} {}".format(*p) for p in installed))
    if installed:
        where = ("NVIDIA driver {} found".format(driver) if driver is not None
                 else "no NVIDIA driver found ({} is missing)".format(DRIVER_VERSION_FILE))
        return ("{} {} is installed but cannot use a GPU; {}: check nvidia-smi and that the driver "
                "supports this CuPy's CUDA version (do not install a second CuPy)".format(
                    installed[0][0], installed[0][1], where))
    if driver is None:
        return ("CuPy is not installed: in the chainer-dcgan checkout, pip install '.[cuda13]' "
                "(NVIDIA driver >= 580) or '.[cuda12]' (driver >= 525)")
    for cuda in sorted(GPU_EXTRAS, reverse=True):
        extra, oldest = GPU_EXTRAS[cuda]
        if driver >= oldest:
            return ("CuPy is not installed: in the chainer-dcgan checkout, pip install '.[{}]' "
                    "(CUDA {} from pip; NVIDIA driver {} found)".format(extra, cuda, driver))
    return ("CuPy is not installed, and NVIDIA driver {} is older than CUDA 12 needs (525): "
            "update the driver, then pip install '.[cuda12]'".format(driver))

