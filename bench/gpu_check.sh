#!/usr/bin/env bash
# Every GPU check of the project in one device call: CuPy tests of chainer_dcgan.functions, a
# training run of examples/train_faces.py --gpu 0 (300 iterations, batch 100, with a resume), one
# ChainerMN rank with the pure_nccl communicator, then bench/train_step.py --gpu 0 (batch 100
# and 32) in strict float32 and with TF32 allowed.
#
# Two steps:
#   1. here, once (needs PyPI):   bash bench/gpu_check.sh prepare
#      builds into .whl/ (git-ignored) the wheels the GPU machine lacks: chainer 7.8.1 (pure
#      Python) and chainer-dcgan itself (for its startup hook, chainer_dcgan_shims.pth). The GPU
#      machine has Python 3.12, numpy 2, cupy-cuda13x 14, torch, and every other dependency of
#      both (six, filelock, typing-extensions, protobuf, packaging, h5py, ...: checked against its
#      package list), but no chainer and no network. EXTRA="name==version ..." adds wheels for
#      more packages (downloaded for CPython 3.12 on manylinux x86_64).
#   2. one call of the device tool (the "run" verb), e.g.
#        command: bash bench/gpu_check.sh      carry: [".whl"]      timeout_s: 540
#      Everything it prints is also written to $OUT/gpu_check.log (comes back with the reply).
#      It installs the carried wheels (--no-deps) into that Python's environment, then stops with
#      exit status 2 and the names of what is missing if any dependency of chainer or
#      chainer-dcgan is not installed there.
#
# Each stage has its own time limit so a hang cannot eat the whole lease; the script goes on to
# the next stage after a failure and exits non-zero if any stage failed.
set -u
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PY=${PYTHON:-python3}

if [ "${1:-}" = "prepare" ]; then
    VENV_PY=${VENV_PY:-$ROOT/.venv/bin/python}
    rm -rf .whl && mkdir -p .whl
    export PIP_BUILD_CONSTRAINT="$ROOT/requirements/build-constraints.txt"
    "$VENV_PY" -m pip wheel -q --no-deps chainer==7.8.1 "$ROOT" -w .whl || exit 1
    if [ -n "${EXTRA:-}" ]; then
        # shellcheck disable=SC2086  # EXTRA is a list of requirements
        "$VENV_PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $EXTRA || exit 1
    fi
    ls -la .whl
    exit 0
fi

LOG_DIR=${OUT:-$ROOT/result/gpu_check}
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/gpu_check.log"
exec > >(tee "$LOG") 2>&1
export PYTHONUNBUFFERED=1
status=0
stage() {  # stage NAME SECONDS COMMAND...
    local name=$1 limit=$2
    shift 2
    echo
    echo "=== $name (limit ${limit}s) $(date -u +%H:%M:%S)"
    timeout "$limit" "$@"
    local rc=$?
    [ $rc -eq 0 ] || { echo "=== $name FAILED rc=$rc"; status=1; }
}

for pattern in 'chainer-7.8.1-*.whl' 'chainer_dcgan-*.whl'; do
    ls .whl/$pattern >/dev/null 2>&1 || { echo "error: no .whl/$pattern: run 'bash bench/gpu_check.sh prepare' here first and carry .whl"; exit 2; }
done
"$PY" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade .whl/*.whl \
    || { echo "error: installing the carried wheels into $PY's environment failed"; exit 2; }
# every requirement of chainer and chainer-dcgan (not of their extras) must be installed here
"$PY" - <<'EOF' || exit 2
import importlib.metadata as md
try:
    from packaging.requirements import Requirement
except ImportError:
    raise SystemExit("error: missing on this machine: packaging. Carry it: EXTRA='packaging' bash bench/gpu_check.sh prepare")
missing = []
for dist in ("chainer", "chainer-dcgan"):
    for text in md.requires(dist) or []:
        req = Requirement(text)
        if req.marker is not None and not req.marker.evaluate({"extra": ""}):
            continue
        try:
            md.version(req.name)
        except md.PackageNotFoundError:
            missing.append("{} (for {})".format(text, dist))
if missing:
    raise SystemExit("error: missing on this machine: " + "; ".join(missing)
                     + ". Carry them: EXTRA='NAME==VERSION ...' bash bench/gpu_check.sh prepare")
print("every dependency of chainer and chainer-dcgan is installed")
EOF
export PYTHONPATH="$ROOT${PYTHONPATH:+:$PYTHONPATH}"  # this checkout's code before the carried wheel's

stage environment 120 bash -c '
nvidia-smi --query-gpu=name,memory.total,driver_version,clocks.max.sm --format=csv
'"$PY"' - <<EOF
import platform, numpy
import chainer, chainer_dcgan  # chainer first: the carried startup hook shims it
from chainer.backends import cuda
print("python", platform.python_version(), "numpy", numpy.__version__, "chainer", chainer.__version__)
print("chainer cuda available:", cuda.available, "cudnn:", cuda.cudnn_enabled,
      getattr(cuda, "_resolution_error", None) or "")
import cupy
print("cupy", cupy.__version__, "device", cupy.cuda.runtime.getDeviceProperties(0)["name"])
import torch
print("torch", torch.__version__, "cuda", torch.version.cuda, "cudnn", torch.backends.cudnn.version())
EOF'

stage "tests on GPU" 180 "$PY" -m pytest -q -p no:cacheprovider tests/test_functions.py tests/test_links.py -k "gpu"

stage "train_faces --gpu 0" 150 bash -c '
'"$PY"' examples/train_faces.py --gpu 0 --out "'"$LOG_DIR"'/train" --iteration 250 --display-interval 50 --snapshot-interval 250 --no-progress &&
'"$PY"' examples/train_faces.py --gpu 0 --out "'"$LOG_DIR"'/train" --iteration 300 --display-interval 50 --snapshot-interval 250 --no-progress --resume &&
ls "'"$LOG_DIR"'/train" && cp "'"$LOG_DIR"'/train/preview/image_iter_00000300.png" "'"$LOG_DIR"'/grid_300.png"'

# one rank of ChainerMN on the GPU (MPI singleton start: no mpiexec needed for one rank)
stage "ChainerMN pure_nccl, 1 rank" 120 "$PY" examples/train_faces.py --gpu 0 --communicator pure_nccl \
    --out "$LOG_DIR/mn" --iteration 20 --display-interval 10 --batchsize 50 --no-progress

for bs in 100 32; do
    # the first run also compiles CuPy's kernels (a fresh machine has no kernel cache): 240 s
    stage "bench batch $bs float32" $([ $bs = 100 ] && echo 240 || echo 150) "$PY" bench/train_step.py --gpu 0 --batchsize $bs --warmup 2 --repeats 10 --infer-repeats 10
    stage "bench batch $bs TF32" 150 "$PY" bench/train_step.py --gpu 0 --batchsize $bs --warmup 2 --repeats 10 --infer-repeats 10 --tf32
done

echo
echo "=== done status=$status $(date -u +%H:%M:%S)"
exit $status
