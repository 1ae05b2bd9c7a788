"""chainer-dcgan: a faithful, importable port of the 2015 Chainer DCGAN that drew anime faces."""
from setuptools import find_packages, setup

setup(
    name="chainer-dcgan",
    version="0.1.0",
    description="Faithful Chainer DCGAN for 96x96 anime faces, with data tools, z-space tools and a browser demo.",
    long_description=open("README.rst", encoding="utf-8").read(),
    long_description_content_type="text/x-rst",
    license="MIT",
    python_requires=">=3.11",
    packages=find_packages(include=["chainer_dcgan", "chainer_dcgan.*"]),
    # The shipped generator(s): weights, tag vectors, classifier and model card, addressed by name.
    package_data={"chainer_dcgan.pretrained": ["*/*.npz", "*/*.json", "*/*.md"]},
    install_requires=[
        "chainer==7.8.1",
        "numpy>=1.26",
        "h5py>=3.8",
        "pillow>=10",
        "matplotlib>=3.7",
        "tqdm>=4.60",
        "requests>=2.28",
        "opencv-python-headless>=4.8,<5",
        # tools/export_weights.py writes ONNX for the browser demo and checks it with onnxruntime
        "onnx>=1.15,<1.19",
        "onnxruntime>=1.17",
    ],
    extras_require={
        # GPU through CuPy 13 (pairs with numpy 1.26; CuPy 14 needs numpy 2 and has no cuDNN).
        "cuda12": ["cupy-cuda12x==13.6.0"],
        "test": [
            "pytest>=8",
            "pytest-timeout>=2.3",
            "scipy>=1.11",
            "playwright>=1.40",
            "mpi4py>=3.1",
            "mpich>=4",
            "gallery-dl>=1.32",
        ],
        # ChainerMN (inside chainer) needs mpi4py and an MPI: the cluster's, or `pip install mpich`.
        "mpi": ["mpi4py>=3.1"],
        # PyTorch is a benchmark/reference-only dependency (bench/ and the FID cross-check).
        "bench": ["torch==2.13.0", "threadpoolctl>=3.1"],
        "docs": ["sphinx>=7"],
    },
)
