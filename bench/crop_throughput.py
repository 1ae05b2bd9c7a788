"""Face-cropping throughput: illustrations per second through :func:`chainer_dcgan.collection.faces.crop_folder`.

The inputs are ~1 MP (1024x1024) JPEG scenes made from the reference illustrations in
``../shared/data/anime_samples`` (each sprite pasted at a random place and scale on a random
background, seeded). One run measures, on the same files:

* before: ``--min-face 24`` (full-resolution detection, the old default) in one process with
  OpenCV's own threads (the old fastest way) and in ``--workers`` spawned processes;
* after: the default ``--min-face`` (the crop size; detection on a downscaled copy, refined at full
  resolution) in one thread, in ``--workers`` threads (the default) and in ``--workers`` processes;

all including start-up, with the ratio after/before, the time of each stage per image (decode,
colour conversion, detection, crop and PNG write) and the load average. Times are printed, never asserted.

Usage::

    python bench/crop_throughput.py [--images 40] [--workers 2] [--cascade PATH]
"""
import argparse
import os
import shutil
import sys
import tempfile
import time

import numpy

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(HERE)
sys.path.insert(0, ROOT)

from chainer_dcgan.collection import faces  # noqa: E402
from chainer_dcgan.utils.images import read_image, save_image  # noqa: E402

SHARED = os.path.join(ROOT, "..", "shared", "data")


def make_scenes(folder, n, seed=0, side=1024):
    """``n`` seeded 1024x1024 JPEG scenes, each with 1-3 illustrations pasted in."""
    samples = os.path.join(SHARED, "anime_samples")
    sprites = [read_image(os.path.join(samples, name)) for name in sorted(os.listdir(samples))
               if not name.startswith("tadne_grid")]
    rs = numpy.random.RandomState(seed)
    import cv2
    for i in range(n):
        scene = numpy.empty((side, side, 3), numpy.uint8)
        scene[:] = rs.randint(0, 256, size=3)
        for _ in range(rs.randint(1, 4)):
            sprite = sprites[rs.randint(len(sprites))]
            scale = rs.uniform(0.6, 1.3)
            h, w = (min(side, int(d * scale)) for d in sprite.shape[:2])
            resized = cv2.resize(sprite, (w, h), interpolation=cv2.INTER_AREA)
            y, x = rs.randint(0, side - h + 1), rs.randint(0, side - w + 1)
            scene[y:y + h, x:x + w] = resized
        save_image(os.path.join(folder, "scene_{:04d}.jpg".format(i)), scene)


def run(src, out, cropper, workers, parallel="threads"):
    """``(seconds, summary)`` of one :func:`crop_folder` run from scratch, start-up included."""
    shutil.rmtree(out, ignore_errors=True)
    start = time.perf_counter()
    summary = faces.crop_folder(src, out, cropper, workers=workers, parallel=parallel)
    return time.perf_counter() - start, summary


def stages(src, cropper, out):
    """Milliseconds per image of each stage, one thread: decode, RGB->gray, detection, crop + PNG write."""
    names = sorted(os.listdir(src))
    totals = dict(decode=0.0, gray=0.0, detect=0.0, crop_write=0.0)
    for name in names:
        t0 = time.perf_counter()
        image = read_image(os.path.join(src, name))
        t1 = time.perf_counter()
        gray = cropper.grayscale(image)
        t2 = time.perf_counter()
        boxes = cropper.detect_gray(gray)
        t3 = time.perf_counter()
        for k, box in enumerate(boxes):
            save_image(os.path.join(out, "{}_{}.png".format(name, k)), cropper.crop(image, box))
        t4 = time.perf_counter()
        for key, dt in zip(totals, (t1 - t0, t2 - t1, t3 - t2, t4 - t3)):
            totals[key] += dt
    return {key: 1000.0 * value / len(names) for key, value in totals.items()}


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=40, help="number of ~1 MP scenes (default 40)")
    p.add_argument("--workers", type=int, default=2, help="threads or processes of the parallel runs (default 2)")
    p.add_argument("--cascade", default=None,
                   help="lbpcascade_animeface.xml (default: ../shared/data's copy, else the cache)")
    args = p.parse_args(argv)
    import cv2
    cascade = args.cascade or (os.path.join(SHARED, faces.CASCADE_NAME)
                               if os.path.exists(os.path.join(SHARED, faces.CASCADE_NAME)) else None)
    before = faces.FaceCropper(cascade, min_face=24)
    after = faces.FaceCropper(cascade)
    tmp = tempfile.mkdtemp(prefix="crop_bench_")
    try:
        src = os.path.join(tmp, "in")
        make_scenes(src, args.images)
        print("cores: {} (os.cpu_count), usable: {}; load average before: {:.2f} {:.2f} {:.2f}".format(
            os.cpu_count(), len(os.sched_getaffinity(0)), *os.getloadavg()))
        print("inputs: {} scenes of 1024x1024 (1.05 MP) JPEG; crops {} px; OpenCV {} with {} threads".format(
            args.images, after.size, cv2.__version__, cv2.getNumThreads()))
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        for label, cropper in (("before (--min-face 24)", before), ("after (--min-face {})".format(after.min_face),
                                                                     after)):
            ms = stages(src, cropper, os.path.join(tmp, "stages"))
            print("{:>24} per image, 1 thread: ".format(label) + ", ".join(
                "{} {:.1f} ms".format(k, v) for k, v in ms.items()) + " (total {:.1f} ms)".format(sum(ms.values())))
        cv2.setNumThreads(threads)
        w = args.workers
        # (when, label, cropper, workers, parallel, OpenCV threads in this process)
        rows = [("before", "1 process, OpenCV threads", before, 1, "threads", threads),
                ("before", "{} processes".format(w), before, w, "processes", threads),
                ("after", "1 thread", after, 1, "threads", 1),
                ("after", "{} threads".format(w), after, w, "threads", threads),
                ("after", "{} processes".format(w), after, w, "processes", threads)]
        results = []
        for when, label, cropper, workers, parallel, cv_threads in rows:
            cv2.setNumThreads(cv_threads)
            seconds, summary = run(src, os.path.join(tmp, "out"), cropper, workers, parallel)
            rate = summary.images_read / seconds
            results.append((when, rate))
            print("{:>6} {:>26}: {:6.2f} s, {:6.2f} illustrations/s, {} faces (at least {} px)".format(
                when, label, seconds, rate, summary.faces_written, cropper.min_face))
        cv2.setNumThreads(threads)
        best_before = max(r for when, r in results if when == "before")
        best_after = max(r for when, r in results if when == "after")
        print("best before {:.1f}/s, best after {:.1f}/s: ratio {:.2f}; load average after: {:.2f} {:.2f} {:.2f}"
              .format(best_before, best_after, best_after / best_before, *os.getloadavg()))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
