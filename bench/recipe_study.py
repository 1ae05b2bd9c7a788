"""Issue 21's recipe study: train each recipe to a fixed number of images, score it, and tabulate.

Each arm is one ``examples/train_faces.py`` run on the embedded faces (96 px unless ``--size``)
with its own flags and its own folder under ``--work``. The study can stop at any moment
(``--seconds``, Ctrl-C, a session's end) and goes on where it stopped when started again with the
same ``--work``: an arm with a snapshot resumes from its newest one (``--resume``, exact), an arm
that reached its images is not trained again, and a score already measured is not measured again.

What is recorded per arm (``--work/ARM/study_arm.json``): every training segment's command, commit,
iterations, wall seconds and the CPU seconds of the training process and its children (from
``wait4``; on a GPU, host CPU time). What is scored (``--work/scores.json``): FID, KID, precision
and recall, computed as ``tools/evaluate.py --json`` does, of the arm's generator after ``--images`` training
images (the raw G, and the moving average where the arm keeps one), on ``--n`` generated faces
against ``--n`` of tools/evaluate.py's embedded faces of ``--synthetic-seed`` (a seed no arm trains on), and the floor:
``--real-baseline`` at the same ``--n``. The InceptionV3 weights are found as tools/evaluate.py finds
them (``CHAINER_DCGAN_INCEPTION`` may name the compact copy, ``tools/fetch_inception.py --compact``). ``--trend`` scores every saved checkpoint too.

Usage (a CPU session; the arms go on in the next one)::

    nice python bench/recipe_study.py --work ~/study --images 100000 --parallel 2 --seconds 9000
    python bench/recipe_study.py --work ~/study --table-only      # the Markdown table so far

On a GPU: ``--device @cupy:0 --parallel 4`` (and the evaluation runs there too, see
``bench/gpu_check.sh study``).
"""
import argparse
import json
import math
import os
import signal
import shutil
import subprocess
import sys
import tarfile
import time

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from chainer_dcgan.evaluation import inception, metrics  # noqa: E402  (installs the chainer shims first)
from chainer_dcgan.models import hparams  # noqa: E402

import chainer  # noqa: E402,I100
import numpy  # noqa: E402

from chainer_dcgan.datasets import SyntheticFaces  # noqa: E402
from chainer_dcgan.models.serialization import load_generator, save_model  # noqa: E402
from chainer_dcgan.training.snapshots import generator_files, preview_grids, snapshots_newest_first  # noqa: E402
from chainer_dcgan.utils import jsonio  # noqa: E402
from chainer_dcgan.utils.atomic import atomic_write  # noqa: E402

EMA = ["--ema", "0.999"]
B32 = ["--batchsize", "32"]
TTUR = ["--lr-gen", "1e-4", "--lr-dis", "4e-4"]
#: name -> train_faces.py flags (beyond --size, --synthetic-size, --out, --iteration and the intervals).
#: The faithful recipe is batch 100 (train_faces.py's default); an arm with ``--ema`` is scored on its
#: raw G too, which is the same recipe without the average (the average does not touch training).
ARMS = {
    "faithful-s0": ["--seed", "0"],
    "faithful-s1": ["--seed", "1"],
    "ema-b100": ["--seed", "0"] + EMA,
    "ema-b32-s0": ["--seed", "0"] + B32 + EMA,
    "ema-b32-s1": ["--seed", "1"] + B32 + EMA,
    "ema-b16-s0": ["--seed", "0", "--batchsize", "16"] + EMA,
    "fastlr-ema-b32": ["--seed", "0"] + B32 + EMA + ["--lr-gen", "4e-4", "--lr-dis", "4e-4"],
    "ttur-ema-b32": ["--seed", "0"] + B32 + EMA + TTUR,
    "snhinge-ema-b32": ["--seed", "0"] + B32 + EMA + ["--spectral-norm", "--loss", "hinge"] + TTUR,
    "diffaug-ema-b32": ["--seed", "0"] + B32 + EMA + ["--diffaugment", "color,translation,cutout"],
}
#: tools/evaluate.py's default --synthetic-size: the pool its --n embedded faces are drawn from.
EVAL_SYNTHETIC_SIZE = 20000
RECORD = "study_arm.json"
SCORES = "scores.json"


def batch_of(flags):
    return int(flags[flags.index("--batchsize") + 1]) if "--batchsize" in flags else 100


def kinds_of(flags):
    """The generator files an arm writes: the raw G, and the moving average with ``--ema``."""
    return ("gen", "gen_ema") if "--ema" in flags else ("gen",)


def target_iteration(images, batch):
    """The first iteration at which ``images`` training images have been seen."""
    return math.ceil(images / batch)


def checkpoint_interval(checkpoint_images, batch, target):
    """Iterations between snapshots: about ``checkpoint_images`` images, dividing ``target`` evenly
    where it can (so the last snapshot falls on the target)."""
    step = max(1, round(checkpoint_images / batch))
    while target % step and step > 1:
        step -= 1
    return step


def read_json(path, default):
    try:
        with open(path) as f:
            return jsonio.load(f)
    except FileNotFoundError:
        return default


def write_json(path, value):
    with atomic_write(path, "w") as f:
        json.dump(value, f, indent=1, sort_keys=True)
        f.write("\n")


def commit():
    try:
        return subprocess.run(["git", "-C", ROOT, "rev-parse", "--short", "HEAD"], capture_output=True,
                              text=True, timeout=10).stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def parse_args(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--work", required=True, help="the study's folder: one sub-folder per arm, scores.json")
    p.add_argument("--arms", nargs="+", default=list(ARMS), choices=list(ARMS))
    p.add_argument("--images", type=int, default=100000, help="training images per arm (default 100,000)")
    p.add_argument("--checkpoint-images", type=int, default=20000,
                   help="images between snapshots and generator files (default 20,000)")
    p.add_argument("--size", type=int, default=96, choices=(64, 96, 128, 256))
    p.add_argument("--synthetic-size", type=int, default=30000, help="embedded faces each arm trains on")
    p.add_argument("--device", default="@numpy", help="Chainer device of training and scoring (e.g. @cupy:0)")
    p.add_argument("--parallel", type=int, default=1, help="arms trained at once")
    p.add_argument("--threads", type=int, default=None,
                   help="BLAS threads per arm on a CPU (default: the cores divided among --parallel)")
    p.add_argument("--seconds", type=float, default=None,
                   help="stop the trainings after this many seconds (they resume next time)")
    p.add_argument("--n", type=int, default=1000, help="generated and real faces per score (default 1000)")
    p.add_argument("--seed", type=int, default=0, help="tools/evaluate.py --seed: which faces and z")
    p.add_argument("--synthetic-seed", type=int, default=7, help="the embedded faces scored against")
    p.add_argument("--trend", action="store_true", help="score every saved checkpoint, not only the last")
    p.add_argument("--no-score", action="store_true", help="train only")
    p.add_argument("--table-only", action="store_true", help="print the table of what is there and stop")
    p.add_argument("--keep", default=None,
                   help="also copy the scores, the table, a tar of logs and grids, and the best arms' final "
                        "generators (float16) into this folder (e.g. $OUT on the GPU machine)")
    p.add_argument("--extra", nargs=argparse.REMAINDER, default=[], help="more train_faces.py flags for every arm")
    args = p.parse_args(argv)
    for name in ("images", "checkpoint_images", "parallel", "n", "synthetic_size"):
        if getattr(args, name) < 1:
            p.error("--{} must be at least 1".format(name.replace("_", "-")))
    return args


# ----------------------------------------------------------------------------------------------
# Training


def arm_command(args, arm):
    flags = ARMS[arm] + args.extra
    batch = batch_of(flags)
    target = target_iteration(args.images, batch)
    interval = checkpoint_interval(args.checkpoint_images, batch, target)
    out = os.path.join(args.work, arm)
    cmd = [sys.executable, os.path.join(ROOT, "examples", "train_faces.py"), "--device", args.device,
           "--out", out, "--size", str(args.size), "--synthetic-size", str(args.synthetic_size),
           "--iteration", str(target), "--snapshot-interval", str(interval),
           "--display-interval", str(max(1, interval // 4)), "--preview-interval", str(interval),
           "--no-progress"] + flags
    if snapshots_newest_first(out):  # train_faces.py --resume takes the newest that loads
        cmd.append("--resume")
    return cmd, out, target


def arm_done(args, arm):
    flags = ARMS[arm] + args.extra
    target = target_iteration(args.images, batch_of(flags))
    return target in generator_files(os.path.join(args.work, arm), "gen")


def _child_env(args):
    env = dict(os.environ)
    if args.device.startswith("@numpy") or args.device.startswith("-1"):
        threads = args.threads or max(1, (os.cpu_count() or 1) // args.parallel)
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            env[name] = str(threads)
    return env


def train(args):
    """Train the arms that have not reached their images, ``--parallel`` at a time; returns False
    when ``--seconds`` ran out (or a signal came) before they all did."""
    pending = [arm for arm in args.arms if not arm_done(args, arm)]
    deadline = None if args.seconds is None else time.time() + args.seconds
    running = {}  # pid -> (arm, Popen, started, first iteration, console, command)
    signalled = set()
    stopping = False

    def stop(signum, frame):
        nonlocal stopping
        stopping = True

    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)}
    try:
        while pending or running:
            while pending and len(running) < args.parallel and not stopping:
                arm = pending.pop(0)
                cmd, out, target = arm_command(args, arm)
                os.makedirs(out, exist_ok=True)
                start_iter = max(generator_files(out, "gen"), default=0)
                print("{} start at iteration {} of {}: {}".format(arm, start_iter, target, " ".join(cmd[1:])),
                      flush=True)
                console = open(os.path.join(out, "console.txt"), "a")
                proc = subprocess.Popen(cmd, stdout=console, stderr=subprocess.STDOUT, env=_child_env(args),
                                        start_new_session=True)
                running[proc.pid] = (arm, proc, time.time(), start_iter, console, cmd)
            if deadline is not None and time.time() >= deadline:
                stopping = True
            if stopping:
                for pid in set(running) - signalled:  # once: a second SIGINT would cut the child's report
                    signalled.add(pid)
                    os.killpg(pid, signal.SIGINT)
            if not running:  # stopped before every arm started
                break
            pid, status, usage = os.wait4(-1, os.WNOHANG)
            if pid == 0:
                time.sleep(1.0)
                continue
            if pid not in running:
                continue
            arm, proc, started, start_iter, console, cmd = running.pop(pid)
            proc.returncode = os.waitstatus_to_exitcode(status)
            console.close()
            out = os.path.join(args.work, arm)
            record = read_json(os.path.join(out, RECORD), {"arm": arm, "flags": ARMS[arm] + args.extra,
                                                           "segments": []})
            record["segments"].append({
                "command": " ".join(cmd[1:]), "commit": commit(), "status": proc.returncode,
                "from_iteration": start_iter, "to_iteration": max(generator_files(out, "gen"), default=0),
                "wall_s": round(time.time() - started, 1),
                "cpu_s": round(usage.ru_utime + usage.ru_stime, 1),
                "ended": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())})
            write_json(os.path.join(out, RECORD), record)
            print("{} stopped with status {} at iteration {}".format(arm, proc.returncode,
                                                                      record["segments"][-1]["to_iteration"]),
                  flush=True)
            if proc.returncode != 0 and not stopping:
                print("{}: the training failed; see {}".format(arm, os.path.join(out, "console.txt")), flush=True)
    finally:
        for s, handler in old.items():
            signal.signal(s, handler)
    return all(arm_done(args, arm) for arm in args.arms)


# ----------------------------------------------------------------------------------------------
# Scoring


class Scorer:
    """FID/KID/precision/recall as ``tools/evaluate.py --json`` computes them (the same faces, z and
    seeds, so the numbers agree), in this process: InceptionV3 and the real features are loaded once
    for all the generators scored (on a GPU, that is most of the time a score takes)."""

    def __init__(self, args):
        self.device = chainer.get_device(args.device)
        self.n, self.seed, self.synthetic_seed = args.n, args.seed, args.synthetic_seed
        self.extractor = inception.FeatureExtractor(self.device, None, batchsize=50)
        self._real = {}

    def _data(self, size):
        if size not in self._real:
            dataset = SyntheticFaces(EVAL_SYNTHETIC_SIZE, seed=self.synthetic_seed, size=size)
            self._real[size] = (dataset, metrics.dataset_features(dataset, self.extractor, self.n, seed=self.seed)[0])
        return self._real[size]

    def floor(self, size=hparams.IMAGE_SIZE):
        """The real-vs-real baseline (``tools/evaluate.py --real-baseline``)."""
        dataset, real = self._data(size)
        other, _ = metrics.dataset_features(metrics.held_out(dataset, self.n, self.seed), self.extractor, self.n,
                                            seed=self.seed + 1)
        return metrics.evaluate(real, other)

    def __call__(self, path):
        gen = load_generator(path)
        gen.to_device(self.device)
        _, real = self._data(getattr(gen, "size", hparams.IMAGE_SIZE))
        return metrics.evaluate(real, metrics.generator_features(gen, self.extractor, self.n, seed=self.seed + 1))


def floor_key(args):
    """The floor's key in scores.json: its n and seed, and the size where it is not 96 px."""
    return "floor@n{}s{}".format(args.n, args.seed) + ("" if args.size == hparams.IMAGE_SIZE else
                                                       "@{}px".format(args.size))


def score_key(args, arm, kind, iteration):
    return "{}/{}/{}@n{}s{}".format(arm, kind, iteration, args.n, args.seed)


def score(args):
    """Score what is trained and not yet scored; scores.json is rewritten after each."""
    path = os.path.join(args.work, SCORES)
    scores = read_json(path, {})
    scorer = None
    if floor_key(args) not in scores:
        print("scoring the real-vs-real floor at n = {}, {} px".format(args.n, args.size), flush=True)
        scorer = Scorer(args)
        started = time.time()
        scores[floor_key(args)] = dict(scorer.floor(args.size), seconds=round(time.time() - started, 1))
        write_json(path, scores)
    for arm in args.arms:
        flags = ARMS[arm] + args.extra
        target = target_iteration(args.images, batch_of(flags))
        for kind in kinds_of(flags):
            files = generator_files(os.path.join(args.work, arm), kind)
            iterations = sorted(files) if args.trend else [i for i in files if i == target]
            for iteration in iterations:
                key = score_key(args, arm, kind, iteration)
                if key in scores:
                    continue
                print("scoring {}".format(key), flush=True)
                scorer = scorer or Scorer(args)
                started = time.time()
                result = scorer(files[iteration])
                result.update(arm=arm, kind=kind, iteration=iteration, images=iteration * batch_of(flags),
                              seconds=round(time.time() - started, 1))
                scores[key] = result
                write_json(path, scores)
    return scores


# ----------------------------------------------------------------------------------------------
# The table


def _seconds(record, upto):
    """Wall and CPU seconds of the segments that trained up to iteration ``upto``."""
    wall = cpu = 0.0
    for seg in record.get("segments", []):
        if seg["from_iteration"] < upto:
            wall += seg["wall_s"]
            cpu += seg["cpu_s"]
    return wall, cpu


def table(args, scores):
    floor = scores.get(floor_key(args))
    lines = ["| arm | G | images | updates | wall s | CPU s | FID | KID | precision | recall |",
             "|---|---|---:|---:|---:|---:|---:|---:|---:|---:|"]
    if floor:
        lines.append("| real vs real (floor) | | | | | | {:.1f} | {:.4f} | {:.3f} | {:.3f} |".format(
            floor["fid"], floor["kid"], floor["precision"], floor["recall"]))
    rows = [s for k, s in scores.items() if not k.startswith("floor") and k.endswith("@n{}s{}".format(args.n, args.seed))
            and s["arm"] in args.arms]
    for s in sorted(rows, key=lambda s: (s["arm"], s["kind"], s["iteration"])):
        record = read_json(os.path.join(args.work, s["arm"], RECORD), {})
        wall, cpu = _seconds(record, s["iteration"])
        lines.append("| {} | {} | {:,} | {:,} | {:.0f} | {:.0f} | {:.1f} | {:.4f} ± {:.4f} | {:.3f} | {:.3f} |".format(
            s["arm"], "average" if s["kind"] == "gen_ema" else "raw", s["images"], s["iteration"], wall, cpu,
            s["fid"], s["kid"], s.get("kid_stderr", float("nan")), s["precision"], s["recall"]))
    return "\n".join(lines)


def keep(args, scores, limit=15 * 2 ** 20, generators=3):
    """Copy what a remote run must bring back into ``args.keep``, in few files under ``limit`` bytes:
    scores.json, study.md, ``study_extra.tar`` (each arm's record, log, console and newest grid, as
    many grids as fit) and the final generators of the ``generators`` lowest-FID arms as float16
    files (``ARM-KIND.npz``, about 9 MB each at 96 px)."""
    os.makedirs(args.keep, exist_ok=True)
    for name in (SCORES, "study.md"):
        if os.path.exists(os.path.join(args.work, name)):
            shutil.copyfile(os.path.join(args.work, name), os.path.join(args.keep, name))
    members = []
    for arm in args.arms:
        out = os.path.join(args.work, arm)
        members += [(os.path.join(out, n), "{}/{}".format(arm, n)) for n in (RECORD, "log", "console.txt")]
    members += [(grids[-1], "{}/{}".format(arm, os.path.basename(grids[-1]))) for arm in args.arms
                for grids in [preview_grids(os.path.join(args.work, arm))] if grids]
    size = 0
    with atomic_write(os.path.join(args.keep, "study_extra.tar")) as f, tarfile.open(fileobj=f, mode="w") as tar:
        for path, name in members:
            if os.path.isfile(path) and size + os.path.getsize(path) + 2048 <= limit:
                tar.add(path, arcname=name)
                size += os.path.getsize(path) + 1024
    finals = sorted((s["fid"], s["arm"], s["kind"], s["iteration"]) for k, s in scores.items()
                    if not k.startswith("floor") and s["iteration"] == target_iteration(
                        args.images, batch_of(ARMS[s["arm"]] + args.extra)))
    for _, arm, kind, iteration in finals[:generators]:
        gen = load_generator(generator_files(os.path.join(args.work, arm), kind)[iteration])
        save_model(os.path.join(args.keep, "{}-{}.npz".format(arm, kind.replace("_", "-"))), gen,
                   dtype=numpy.float16)


def main(argv=None):
    args = parse_args(argv)
    os.makedirs(args.work, exist_ok=True)
    if not args.table_only:
        finished = train(args)
        if not args.no_score:
            score(args)
        if not finished:
            print("not every arm reached {:,} images; run the same command again to go on".format(args.images))
    scores = read_json(os.path.join(args.work, SCORES), {})
    text = table(args, scores)
    with atomic_write(os.path.join(args.work, "study.md"), "w") as f:
        f.write(text + "\n")
    print(text)
    if args.keep:
        keep(args, scores)
    return 0


if __name__ == "__main__":
    sys.exit(main())
