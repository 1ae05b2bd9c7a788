"""bench/recipe_study.py at a toy budget: an arm stopped by --seconds is recorded and not called done,
a second run trains it, a larger --images resumes it from its snapshot, and the scores (the numbers
tools/evaluate.py gives, when the Inception weights are at hand) make the table."""
import json
import os
import subprocess
import sys
import tarfile

import pytest
from conftest import REPO

SCRIPT = os.path.join(REPO, "bench", "recipe_study.py")
TOY = ["--arms", "ema-b32-s0", "--size", "64", "--synthetic-size", "100", "--checkpoint-images", "32",
       "--threads", "1"]


def study(work, *flags, env=None):
    done = subprocess.run([sys.executable, SCRIPT, "--work", str(work)] + TOY + list(flags),
                          capture_output=True, text=True, timeout=600, env=env)
    assert done.returncode == 0, done.stderr
    return done.stdout


def record(work):
    with open(work / "ema-b32-s0" / "study_arm.json") as f:
        return json.load(f)


def test_the_study_stops_resumes_and_scores(tmp_path, request):
    work = tmp_path / "study"
    # --seconds 0: the deadline has passed when the arm starts, so it is stopped at once on every machine
    # (0.5 s let a fast machine finish the one toy iteration before the stop arrived)
    out = study(work, "--images", "32", "--seconds", "0", "--no-score")
    assert "not every arm reached 32 images" in out
    first = record(work)["segments"]
    assert len(first) == 1 and first[0]["status"] != 0 and first[0]["to_iteration"] == 0

    study(work, "--images", "32", "--no-score")  # 1 iteration of 32
    segments = record(work)["segments"]
    assert segments[-1]["status"] == 0 and segments[-1]["to_iteration"] == 1
    assert segments[-1]["cpu_s"] > 0 and segments[-1]["wall_s"] > 0

    env = dict(os.environ, CHAINER_DCGAN_CACHE=str(tmp_path / "cache"))  # real features cached apart
    try:
        env["CHAINER_DCGAN_INCEPTION"] = request.getfixturevalue("inception_weights")
        scoring = ["--n", "8"]
    except pytest.skip.Exception:
        scoring = ["--no-score"]
    out = study(work, "--images", "64", *scoring, env=env)  # goes on from snapshot_iter_1 to iteration 2
    last = record(work)["segments"][-1]
    assert "--resume" in last["command"].split() and "--iteration 2" in last["command"]
    assert (last["from_iteration"], last["to_iteration"], last["status"]) == (1, 2, 0)
    assert out.count("\n| ema-b32-s0 |") == (2 if scoring != ["--no-score"] else 0)

    again = study(work, "--images", "64", "--keep", str(tmp_path / "keep"), *scoring, env=env)  # nothing left to train or score
    assert "start at iteration" not in again and "scoring" not in again
    assert len(record(work)["segments"]) == 3
    if scoring != ["--no-score"]:
        with open(work / "scores.json") as f:
            scores = json.load(f)
        assert set(scores) == {"floor@n8s0@64px", "ema-b32-s0/gen/2@n8s0", "ema-b32-s0/gen_ema/2@n8s0"}
        assert all(0 <= s["precision"] <= 1 and s["fid"] > 0 for s in scores.values())
        assert (work / "study.md").read_text().count("| ema-b32-s0 |") == 2
        # the same numbers as tools/evaluate.py (same faces, z and seeds)
        done = subprocess.run([sys.executable, os.path.join(REPO, "tools", "evaluate.py"), "--model",
                               str(work / "ema-b32-s0" / "gen_iter_2.npz"), "--n", "8", "--synthetic-seed", "7",
                               "--json", "--no-progress"], capture_output=True, text=True, timeout=600, env=env)
        assert done.returncode == 0, done.stderr
        theirs = json.loads(done.stdout)
        for key in ("fid", "kid", "precision", "recall"):
            assert scores["ema-b32-s0/gen/2@n8s0"][key] == pytest.approx(theirs[key], rel=1e-6, abs=1e-9)
        # what a remote run brings back: the scores, the table, a tar of records and grids, float16 generators
        kept = sorted(os.listdir(tmp_path / "keep"))
        assert kept == ["ema-b32-s0-gen-ema.npz", "ema-b32-s0-gen.npz", "scores.json", "study.md", "study_extra.tar"]
        with tarfile.open(tmp_path / "keep" / "study_extra.tar") as tar:
            names = tar.getnames()
        assert "ema-b32-s0/study_arm.json" in names and "ema-b32-s0/image_iter_00000002.png" in names
        from chainer_dcgan.models.serialization import load_generator
        assert load_generator(str(tmp_path / "keep" / "ema-b32-s0-gen.npz")).size == 64


def test_bad_arguments_are_refused(tmp_path):
    done = subprocess.run([sys.executable, SCRIPT, "--work", str(tmp_path), "--images", "0"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "--images must be at least 1" in done.stderr
    done = subprocess.run([sys.executable, SCRIPT, "--work", str(tmp_path), "--arms", "nope"],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 2 and "invalid choice: 'nope'" in done.stderr
