"""chainer-dcgan: a faithful, importable port of the 2015 Chainer DCGAN that drew anime faces."""
import os

from setuptools import Command, find_packages, setup
from setuptools.command.build import build

#: One line run at interpreter start: puts a finder on sys.meta_path (imports nothing heavy) so
#: that chainer is shimmed whenever it is imported, also before chainer_dcgan. See _chainer_dcgan_shims/.
PTH_NAME = "chainer_dcgan_shims.pth"
PTH_LINE = "import _chainer_dcgan_shims; _chainer_dcgan_shims.register()\n"


class build_pth(Command):
    """Writes PTH_NAME at the top of the install: into build_lib for a wheel, and straight into the
    editable wheel for ``pip install -e`` (setuptools builds that from its install_lib)."""

    description = "write " + PTH_NAME
    user_options = []

    def initialize_options(self):
        self.build_lib = None
        self.editable_mode = False

    def finalize_options(self):
        self.set_undefined_options("build", ("build_lib", "build_lib"))

    def _target(self):
        if self.editable_mode:
            return os.path.join(self.get_finalized_command("install").install_lib, PTH_NAME)
        return os.path.join(self.build_lib, PTH_NAME)

    def run(self):
        os.makedirs(os.path.dirname(self._target()), exist_ok=True)
        with open(self._target(), "w", encoding="utf-8") as f:
            f.write(PTH_LINE)

    def get_outputs(self):
        return [] if self.editable_mode else [self._target()]

    def get_output_mapping(self):
        return {}


class build_with_pth(build):
    sub_commands = build.sub_commands + [("build_pth", None)]


setup(
    name="chainer-dcgan",
    version="0.1.0",
    description="Faithful Chainer DCGAN for 96x96 anime faces, with data tools, z-space tools and a browser demo.",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["chainer_dcgan", "chainer_dcgan.*", "_chainer_dcgan_shims"]),
    # The shipped generator(s): weights, tag vectors, classifier and model card, addressed by name.
    # CHAINER_DCGAN_NO_MODELS=1 leaves them out (bench/gpu_check.sh prepare: the GPU machine imports the
    # carried checkout, models included, and the wheel must stay small enough to carry).
    package_data={} if os.environ.get("CHAINER_DCGAN_NO_MODELS") == "1" else {
        "chainer_dcgan.models.pretrained": ["*/*.npz", "*/*.json", "*/*.md"]},
    cmdclass={"build": build_with_pth, "build_pth": build_pth},
    # One command in front of examples/ and tools/ (chainer-dcgan train|generate|export|serve|...).
    entry_points={"console_scripts": ["chainer-dcgan = chainer_dcgan.commands:main"]},
    install_requires=[
        "chainer==7.8.1",
        "numpy>=1.26",
        "packaging>=22",  # _chainer_dcgan_shims.patches answers chainer.testing's requirement checks with it
        "h5py>=3.8",
        "pillow>=10",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "requests>=2.28",
        "opencv-python-headless>=4.8,<5",
        # the CPU fast path's fused element-wise loops (chainer_dcgan/functions/_kernels.py); without
        # it the same work runs as NumPy passes
        "numba>=0.59",
        # tools/export_weights.py writes ONNX for the browser demo and checks it with onnxruntime
        "onnx>=1.15,<1.19",
        "onnxruntime>=1.17",
    ],
    extras_require={
        # GPUs: CuPy 14 with NVIDIA's CUDA libraries from pip (the [ctk] extra), no system CUDA needed.
        # Pick the one your driver supports (nvidia-smi): CUDA 13 needs driver >= 580, CUDA 12 >= 525.
        "cuda13": ["cupy-cuda13x[ctk]>=14,<15"],
        "cuda12": ["cupy-cuda12x[ctk]>=14,<15"],
        # The cuDNN route: CuPy 13 links a system CUDA 12 toolkit and cuDNN 8 (not from pip).
        "cuda12-cudnn": ["cupy-cuda12x==13.6.0"],
        # oneMKL for the CPU fast path's products (CHAINER_DCGAN_BLAS=mkl): faster on Intel AVX-512 CPUs;
        # 685 MB, and its threading libraries are not needed (it runs sequential, split by our pool).
        "mkl": ["mkl>=2025"],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "pytest-xdist>=3.5",  # make test runs the suite on two processes
            "setuptools>=70.1",  # tests/test_compat.py builds our wheel offline (bdist_wheel built in)
            "scipy>=1.11",
            "playwright>=1.40",
            "mpi4py>=3.1",
            "mpich>=4",
            "gallery-dl>=1.32",
        ],
        # ChainerMN (inside chainer) needs mpi4py and an MPI: the cluster's, or `pip install mpich`.
        "mpi": ["mpi4py>=3.1"],
        # PyTorch: bench/ and tools/make_inception_golden.py only (`make bench` makes its own venv).
        "bench": ["torch==2.13.0", "threadpoolctl>=3.1"],
        "docs": ["sphinx>=7"],
        # bench/chainer_suite.py: Chainer's own tests import the mock backport.
        "chainer-suite": ["mock>=4"],
    },
)
