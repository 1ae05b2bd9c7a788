"""Face-cropping throughput: illustrations per second through :func:`chainer_dcgan.faces.crop_folder`.

The inputs are ~1 MP (1024x1024) JPEG scenes made from the reference illustrations in
``../shared/data/anime_samples`` (each sprite pasted at a random place and scale on a random
background, seeded). The same run measures one process with OpenCV's own threads (the
reference; detectMultiScale is multi-threaded), one with a single thread, and ``--workers``
processes of one thread each, including their start-up, and prints the ratio. Times are printed, never asserted.

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

from chainer_dcgan import faces  # noqa: E402
from chainer_dcgan.images import read_image, save_image  # noqa: E402

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


def run(src, out, cropper, workers):
    """``(total seconds, steady images/s, summary)``; steady: from the first result to the last,
    leaving out the processes' start-up (each imports chainer_dcgan)."""
    shutil.rmtree(out, ignore_errors=True)
    stamps = []
    start = time.perf_counter()
    summary = faces.crop_folder(src, out, cropper, workers=workers,
                                on_image=lambda *_: stamps.append(time.perf_counter()))
    total = time.perf_counter() - start
    steady = (len(stamps) - 1) / (stamps[-1] - stamps[0]) if len(stamps) > 1 else float("nan")
    return total, steady, summary


def main(argv=None):
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--images", type=int, default=40, help="number of ~1 MP scenes (default 40)")
    p.add_argument("--workers", type=int, default=2, help="processes of the parallel run (default 2)")
    p.add_argument("--cascade", default=None,
                   help="lbpcascade_animeface.xml (default: ../shared/data's copy, else the cache)")
    args = p.parse_args(argv)
    cascade = args.cascade or (os.path.join(SHARED, faces.CASCADE_NAME)
                               if os.path.exists(os.path.join(SHARED, faces.CASCADE_NAME)) else None)
    cropper = faces.FaceCropper(cascade)
    tmp = tempfile.mkdtemp(prefix="crop_bench_")
    try:
        src = os.path.join(tmp, "in")
        make_scenes(src, args.images)
        print("cores: {} (os.cpu_count), usable: {}".format(os.cpu_count(), len(os.sched_getaffinity(0))))
        print("inputs: {} scenes of 1024x1024 (1.05 MP) JPEG".format(args.images))
        import cv2
        threads = cv2.getNumThreads()
        cv2.setNumThreads(1)
        one_t, one_steady, one = run(src, os.path.join(tmp, "out0"), cropper, 1)
        cv2.setNumThreads(threads)
        base_t, base_steady, base = run(src, os.path.join(tmp, "out1"), cropper, 1)
        par_t, par_steady, par = run(src, os.path.join(tmp, "out2"), cropper, args.workers)
        assert par.faces_written == base.faces_written == one.faces_written
        rows = (("1 process, 1 thread", one_t, one_steady, one),
                ("1 process (reference)", base_t, base_steady, base),
                ("{} processes".format(args.workers), par_t, par_steady, par))
        print("OpenCV threads in one process: {} (workers use 1 each)".format(threads))
        for label, t, steady, s in rows:
            print("{:>22}: {:6.2f} s, {:6.2f} illustrations/s ({:6.2f} after start-up), {:6.2f} faces/s "
                  "({} faces)".format(label, t, s.images_read / t, steady, s.faces_written / t, s.faces_written))
        print("ratio {} processes / 1 process: {:.2f} overall, {:.2f} after start-up".format(
            args.workers, base_t / par_t, par_steady / base_steady))
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
