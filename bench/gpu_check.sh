#!/usr/bin/env bash
# Every GPU check of the project, in two device calls (the issue's "run 1" and "run 2").
#
#   bash bench/gpu_check.sh prepare          here, once (needs PyPI): wheels into .whl/ (git-ignored)
#   bash bench/gpu_check.sh                  run 1, prove and measure (about 5 minutes):
#       CuPy equals NumPy for one update of the faithful, conditional and spectral-norm models
#       (bench/gpu_equivalence.py); bench/train_step.py --gpu 0 at batch 100 and 256, strict float32
#       and TF32, Chainer's fast path and own functions against PyTorch eager (cuDNN); where the time
#       of one iteration goes (bench/gpu_profile.py); a short examples/train_faces.py --gpu 0 with a
#       resume; the GPU tests; one ChainerMN rank with pure_nccl; PyTorch through torch.compile.
#   bash bench/gpu_check.sh train SECONDS    run 2: bench/gpu_train.py, its recipes (DEFAULT_ARMS) trained side by
#       side on the GPU for SECONDS, their newest generators kept as float16 files in $OUT.
#   bash bench/gpu_check.sh study SECONDS    run 2 instead: issue 21's recipe study (bench/recipe_study.py), every
#       arm at once on the GPU to IMAGES (default 100000) training images each or SECONDS, whichever comes
#       first, then scored there (FID/KID/precision/recall at N, default 1000, beside the real-vs-real
#       floor) with the compact InceptionV3 weights carried in .whl/; $OUT gets scores.json, study.md,
#       study_extra.tar and the three best final generators (float16). A device call: timeout_s 560
#       for "study 400".
#
# prepare builds chainer 7.8.1 (pure Python) and chainer-dcgan itself (for its startup hook,
# chainer_dcgan_shims.pth) as wheels, and writes .whl/inception_f16.npz, the compact copy of the
# InceptionV3 weights (44 MB: the original's 87 MB would not fit the 64 MiB carried). The GPU machine has Python 3.12, numpy 2, cupy-cuda13x 14,
# torch, and every other dependency of both, but no chainer and no network. EXTRA="name==version
# ..." adds wheels for more packages (downloaded for CPython 3.12 on manylinux x86_64).
# A device call: command "bash bench/gpu_check.sh", carry [".whl"], timeout_s 330.
# Everything printed is also written to $OUT/gpu_check.log (or $OUT/gpu_train.log), which comes
# back with the reply even when the call is cut off.
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
    # the package's wheel without the shipped models (the run imports this checkout's, models included);
    # from a clean build/, since setuptools reuses build/lib and would pack stale files from it
    rm -rf "$ROOT/build"
    CHAINER_DCGAN_NO_MODELS=1 "$VENV_PY" -m pip wheel -q --no-deps chainer==7.8.1 "$ROOT" -w .whl || exit 1
    "$VENV_PY" tools/fetch_inception.py --compact .whl/inception_f16.npz || exit 1
    if [ -n "${EXTRA:-}" ]; then
        # shellcheck disable=SC2086  # EXTRA is a list of requirements
        "$VENV_PY" -m pip download -q --no-deps --only-binary=:all: --python-version 3.12 \
            --platform manylinux_2_28_x86_64 --platform manylinux2014_x86_64 -d .whl $EXTRA || exit 1
    fi
    ls -la .whl
    exit 0
fi

MODE=${1:-check}
LOG_DIR=${OUT:-$ROOT/result/gpu_check}
mkdir -p "$LOG_DIR"
LOG="$LOG_DIR/gpu_$MODE.log"
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

if [ "$MODE" = "train" ]; then
    SECONDS_BUDGET=${2:?"usage: bash bench/gpu_check.sh train SECONDS"}
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    OMP_NUM_THREADS=3 "$PY" bench/gpu_train.py --gpu 0 --seconds "$SECONDS_BUDGET" --work /tmp/gpu_train --keep "$LOG_DIR"
    status=$?
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
    echo "=== done status=$status $(date -u +%H:%M:%S)"
    exit $status
fi

if [ "$MODE" = "study" ]; then
    SECONDS_BUDGET=${2:?"usage: bash bench/gpu_check.sh study SECONDS"}
    export CHAINER_DCGAN_INCEPTION="$ROOT/.whl/inception_f16.npz"
    [ -f "$CHAINER_DCGAN_INCEPTION" ] || { echo "error: no .whl/inception_f16.npz: run 'bash bench/gpu_check.sh prepare' here first and carry .whl"; exit 2; }
    nvidia-smi --query-gpu=name,memory.total,driver_version --format=csv
    # shellcheck disable=SC2086  # STUDY_ARGS is a list of flags (e.g. "--trend" or "--arms a b")
    OMP_NUM_THREADS=1 "$PY" bench/recipe_study.py --work /tmp/study --device @cupy:0 --parallel "${PARALLEL:-10}" \
        --images "${IMAGES:-100000}" --n "${N:-1000}" --seconds "$SECONDS_BUDGET" --keep "$LOG_DIR" ${STUDY_ARGS:-}
    status=$?
    nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv
    echo "=== done status=$status $(date -u +%H:%M:%S)"
    exit $status
fi

stage environment 60 bash -c '
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

# the first GPU stage also compiles CuPy's kernels (a fresh machine has no kernel cache)
stage "CuPy equals NumPy, one update" 150 "$PY" bench/gpu_equivalence.py --gpu 0 --batchsize 50
# one rank of ChainerMN on the GPU (MPI singleton start: no mpiexec needed for one rank)
stage "ChainerMN pure_nccl, 1 rank" 60 bash -c '"'"$PY"'" examples/train_faces.py --gpu 0 --communicator pure_nccl \
    --out /tmp/mn --iteration 20 --display-interval 10 --batchsize 50 --synthetic-size 1000 --no-progress'

B="$PY bench/train_step.py --gpu 0 --warmup 2 --infer-repeats 5"
stage "bench batch 100 float32" 120 $B --batchsize 100 --repeats 7 --peak-tflops 67
stage "bench batch 100 TF32" 90 $B --batchsize 100 --repeats 7 --tf32 --peak-tflops 495
stage "profile batch 100" 60 "$PY" bench/gpu_profile.py --gpu 0 --batchsize 100
stage "bench batch 256 float32" 90 $B --batchsize 256 --repeats 5 --peak-tflops 67
stage "bench batch 256 TF32" 90 $B --batchsize 256 --repeats 5 --tf32 --peak-tflops 495

stage "train_faces --gpu 0 with a resume" 90 bash -c '
T=/tmp/train_check; rm -rf $T
'"$PY"' examples/train_faces.py --gpu 0 --out $T --iteration 100 --display-interval 50 --snapshot-interval 100 --synthetic-size 2000 --no-progress &&
'"$PY"' examples/train_faces.py --gpu 0 --out $T --iteration 150 --display-interval 50 --snapshot-interval 100 --synthetic-size 2000 --no-progress --resume &&
ls $T && cp $T/preview/image_iter_00000150.png "'"$LOG_DIR"'/grid_150.png"'

stage "tests on GPU" 90 "$PY" -m pytest -q -p no:cacheprovider tests/functions/test_functions.py tests/links/test_links.py -k "gpu"

stage "torch.compile batch 100 float32" 150 $B --batchsize 100 --repeats 5 --skip-own --torch-compile --peak-tflops 67

echo
echo "=== done status=$status $(date -u +%H:%M:%S)"
exit $status
