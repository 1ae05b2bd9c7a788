"""Train several recipes at once on one GPU for a fixed wall-clock budget; keep what fits in a small folder.

Each arm is one ``examples/train_faces.py --gpu 0`` process (96 px, the embedded faces) with its own
flags; they share the GPU for ``--seconds`` and are then stopped. While they run, every ``--every``
seconds the newest generator file each arm asks for (``gen_iter_N.npz`` or ``gen_ema_iter_N.npz``)
is copied to ``--keep`` as ``ARM-KIND.npz`` with float16 weights (about 9 MB for the 96 px G, a file
the device tool can bring back), and ``--keep``/``train_extra.tar`` is rewritten with each arm's
log, console output and newest sample grid. So a run cut off at any moment leaves its newest
models behind. The trainings themselves write into ``--work`` (snapshots, full-precision weights).

Usage::

    python bench/gpu_train.py --gpu 0 --seconds 330 --work /tmp/gpu_train --keep "$OUT"

The arms (``ARMS`` below). The first H200 run (2026-12-04) trained the faithful recipe with seeds 0
and 1 (raw G and its moving average, decay 0.999, each kept), spectral norm + hinge + two time-scale
rates (G 1e-4, D 4e-4) with the average, and the faithful recipe at batch 32 with the average
(``--arms faithful-s0 faithful-s1 sn-hinge-ttur faithful-b32``). Batch 32 won per image, so the
default arms now are batch 32 with seeds 0 and 1, batch 16, and batch 32 with DiffAugment, each
with the (now warmed-up) moving average.
"""
import argparse
import io
import json
import os
import signal
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

#: name -> (train_faces.py flags, generator files to keep: "gen" and/or "gen_ema")
ARMS = {
    "faithful-s0": (["--seed", "0", "--ema", "0.999"], ("gen", "gen_ema")),
    "faithful-s1": (["--seed", "1", "--ema", "0.999"], ("gen", "gen_ema")),
    "sn-hinge-ttur": (["--seed", "0", "--spectral-norm", "--loss", "hinge", "--lr-gen", "1e-4", "--lr-dis", "4e-4",
                       "--ema", "0.999"], ("gen_ema",)),
    "faithful-b32": (["--seed", "0", "--batchsize", "32", "--ema", "0.999"], ("gen_ema",)),
    # after the first H200 run (bench/RESULTS.md): more updates per image, the warmed-up average
    "b32-s0": (["--seed", "0", "--batchsize", "32", "--ema", "0.999"], ("gen", "gen_ema")),
    "b32-s1": (["--seed", "1", "--batchsize", "32", "--ema", "0.999"], ("gen_ema",)),
    "b16-s0": (["--seed", "0", "--batchsize", "16", "--ema", "0.999"], ("gen", "gen_ema")),
    # issue 21's DiffAugment arm: batch 32 with the average, D's inputs augmented
    "b32-diffaug": (["--seed", "0", "--batchsize", "32", "--ema", "0.999", "--diffaugment",
                     "color,translation,cutout"], ("gen_ema",)),
}
#: The arms run when --arms is not given: those of the first H200 run (2026-12-04) are kept above
#: for reference; its lessons picked these.
DEFAULT_ARMS = ("b32-s0", "b32-s1", "b16-s0", "b32-diffaug")  # 6 generators + log + tar: the 8 files back
TAR_LIMIT = 15 * 2 ** 20


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--gpu", type=int, default=0)
    p.add_argument("--seconds", type=float, required=True, help="wall-clock budget of the trainings")
    p.add_argument("--work", required=True, help="folder of the trainings' own outputs")
    p.add_argument("--keep", required=True, help="folder of the float16 generators, the tar and the log")
    p.add_argument("--every", type=float, default=20.0, help="seconds between copies into --keep")
    p.add_argument("--arms", nargs="+", default=list(DEFAULT_ARMS), choices=list(ARMS))
    p.add_argument("--synthetic-size", type=int, default=30000)
    p.add_argument("--snapshot-interval", type=int, default=500,
                   help="iterations between snapshots at batch 100 (scaled by 100/batch for other batches)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[],
                   help="more train_faces.py flags for every arm (e.g. --device @numpy for a dry run)")
    return p.parse_args(argv)


def newest(folder, kind):
    from chainer_dcgan.training.snapshots import generator_files
    files = generator_files(folder, kind)
    return (files[max(files)], max(files)) if files else (None, -1)


def keep_float16(src, dest):
    from chainer_dcgan.models.serialization import load_generator, save_model
    import numpy
    gen = load_generator(src)
    save_model(dest, gen, dtype=numpy.float16)  # atomic


def write_tar(args, kept, started):
    """train_extra.tar: per arm its console output, Chainer log, newest grid (and earlier grids if room)."""
    from chainer_dcgan.training.snapshots import preview_grids
    members = []
    for arm in args.arms:
        out = os.path.join(args.work, arm)
        for name in ("console.txt", "log"):
            if os.path.exists(os.path.join(out, name)):
                members.append((os.path.join(out, name), "{}/{}".format(arm, name)))
    grids = []
    for arm in args.arms:
        found = preview_grids(os.path.join(args.work, arm))
        grids.append([(p, "{}/{}".format(arm, os.path.basename(p))) for p in found])
    members += [g[-1] for g in grids if g]  # the newest grid of every arm first
    rest = [m for g in grids for m in reversed(g[:-1])]
    summary = json.dumps({"kept": kept, "elapsed_s": round(time.time() - started, 1)}, indent=1).encode()
    buf = io.BytesIO()
    size = len(summary)
    with tarfile.open(fileobj=buf, mode="w") as tar:
        info = tarfile.TarInfo("summary.json")
        info.size = len(summary)
        tar.addfile(info, io.BytesIO(summary))
        for path, name in members + rest:
            try:
                n = os.path.getsize(path)
            except OSError:
                continue
            if size + n + 2048 > TAR_LIMIT:
                continue
            tar.add(path, arcname=name)
            size += n + 1024
    tmp = os.path.join(args.keep, ".train_extra.tar.tmp")
    with open(tmp, "wb") as f:
        f.write(buf.getvalue())
    os.replace(tmp, os.path.join(args.keep, "train_extra.tar"))


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    os.makedirs(args.keep, exist_ok=True)
    started = time.time()
    procs = {}
    for arm in args.arms:
        flags, _ = ARMS[arm]
        batch = int(flags[flags.index("--batchsize") + 1]) if "--batchsize" in flags else 100
        interval = max(1, args.snapshot_interval * 100 // batch)
        out = os.path.join(args.work, arm)
        os.makedirs(out, exist_ok=True)
        device = [] if "--device" in args.extra else ["--gpu", str(args.gpu)]
        cmd = [sys.executable, os.path.join(ROOT, "examples", "train_faces.py")] + device + [
            "--out", out, "--iteration", "10000000", "--snapshot-interval", str(interval),
            "--display-interval", str(max(1, interval // 5)), "--preview-interval", str(interval),
            "--synthetic-size", str(args.synthetic_size), "--no-progress"] + flags + args.extra
        print("{} start: {}".format(arm, " ".join(cmd[1:])), flush=True)
        console = open(os.path.join(out, "console.txt"), "w")
        procs[arm] = (subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, start_new_session=True),
                      console)
    kept = {}
    deadline = started + args.seconds

    def collect():
        for arm in args.arms:
            for kind in ARMS[arm][1]:
                path, iteration = newest(os.path.join(args.work, arm), kind)
                key = "{}-{}".format(arm, kind.replace("_", "-"))
                if path is None or kept.get(key, {}).get("iteration") == iteration:
                    continue
                try:
                    keep_float16(path, os.path.join(args.keep, key + ".npz"))
                except Exception as e:  # a half-written file: the next round takes it
                    print("{}: not kept yet ({})".format(key, e), flush=True)
                    continue
                kept[key] = {"iteration": iteration, "at_s": round(time.time() - started, 1)}
                print("kept {} iteration {} at {:.0f} s".format(key, iteration, time.time() - started), flush=True)
        write_tar(args, kept, started)

    while time.time() < deadline:
        time.sleep(min(args.every, max(0.0, deadline - time.time())))
        collect()
        for arm, (proc, _) in procs.items():
            if proc.poll() is not None and not getattr(proc, "reported", False):
                proc.reported = True
                print("{} ended early with status {}".format(arm, proc.returncode), flush=True)
    for arm, (proc, console) in procs.items():
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGINT)
    for arm, (proc, console) in procs.items():
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()
        console.close()
    collect()
    for arm in args.arms:
        with open(os.path.join(args.work, arm, "console.txt"), errors="replace") as f:
            lines = f.read().splitlines()
        print("--- {} (last lines)".format(arm))
        print("\n".join(lines[-8:]))
    print(json.dumps(kept, indent=1))
    return 0


if __name__ == "__main__":
    sys.exit(main())
