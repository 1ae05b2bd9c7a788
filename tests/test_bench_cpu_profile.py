"""bench/cpu_profile.py runs one small profile and accounts for the iteration it measured; bad counts to it and to
bench/train_step.py end in one error: line naming the flag (status 2), before any work."""
import os
import re
import subprocess
import sys

import pytest

from conftest import REPO


def test_cpu_profile_buckets_and_layers():
    env = dict(os.environ)
    env.pop("CHAINER_DCGAN_KERNELS", None)
    out = subprocess.run([sys.executable, os.path.join(REPO, "bench", "cpu_profile.py"), "--batchsize", "2",
                          "--iterations", "1", "--threads", "1"], cwd=REPO, env=env, capture_output=True, text=True,
                         timeout=600)
    assert out.returncode == 0, out.stderr
    text = out.stdout
    shares = [int(s) for s in re.findall(r"^\S.*?\s+\d+\.\d{3}\s+(\d+)%$", text, re.M)]
    assert len(shares) >= 5 and 95 <= sum(shares) <= 105, text  # every bucket, adding up to the whole
    assert "matrix products (BLAS)" in text and "BatchNorm + activations" in text and "Winograd transforms" in text
    # every stride-2 layer and direction of both models: 4 layer shapes, 3 directions
    rows = re.findall(r"^\s*(\d+) ch <-> +(\d+) ch, small side +(\d+) \((grid|columns|Winograd)\): (\w+)",
                      text, re.M)
    assert len(rows) == 12, text
    assert {(b, a, side) for b, a, side, _, _ in rows} == {("3", "64", "48"), ("64", "128", "24"),
                                                           ("128", "256", "12"), ("256", "512", "6")}, rows
    # the RGB layers on the column path, the others on the Winograd path
    assert all((path == "columns") == (side == "48") and (path == "Winograd") == (side != "48")
               for _, _, side, path, _ in rows), rows
    assert re.search(r"wall time per iteration \(uninstrumented, median of 1\): \d+\.\d+ s", text)


def test_gemm_bench_times_every_product_shape():
    """bench/gemm.py: one row per product of the 96 px models, with oneMKL beside OpenBLAS where installed."""
    out = subprocess.run([sys.executable, os.path.join(REPO, "bench", "gemm.py"), "--batchsize", "1",
                          "--repeats", "1", "--threads", "1"], cwd=REPO, capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    rows = re.findall(r"^\| (grid|columns) .*\((\d+) x (\d+) x (\d+)\) \|(.*)\|$", out.stdout, re.M)
    assert len(rows) == 9, out.stdout
    assert all(float(cell) > 0 for *_, cells in rows for cell in cells.split("|")), out.stdout
    mkl = "oneMKL is not installed" not in out.stdout
    assert all(len(cells.split("|")) == (3 if mkl else 1) for *_, cells in rows), out.stdout
    assert re.search(r"^time of the set .*OpenBLAS \d+\.\d ms", out.stdout, re.M), out.stdout
    assert ("ratio oneMKL/OpenBLAS over the set" in out.stdout) == mkl


@pytest.mark.parametrize("script, args, flag", [
    ("gemm.py", ["--repeats", "0"], "--repeats"),
    ("cpu_profile.py", ["--iterations", "0"], "--iterations"),
    ("cpu_profile.py", ["--batchsize", "-3"], "--batchsize"),
    ("cpu_profile.py", ["--threads", "x"], "--threads"),
    ("train_step.py", ["--repeats", "0"], "--repeats"),
    ("train_step.py", ["--warmup", "-1"], "--warmup"),
    ("train_step.py", ["--infer-repeats", "0"], "--infer-repeats"),
])
def test_bad_counts_give_one_error_line(tmp_path, script, args, flag):
    out = subprocess.run([sys.executable, os.path.join(REPO, "bench", script)] + args, cwd=tmp_path,
                         capture_output=True, text=True, timeout=120)
    errors = [line for line in out.stderr.splitlines() if "error:" in line]
    assert out.returncode == 2 and len(errors) == 1 and flag in errors[0], out.stderr
    assert "Traceback" not in out.stderr and out.stdout == "" and list(tmp_path.iterdir()) == []
