"""Anime-face detection and cropping with nagadomi's ``lbpcascade_animeface``.

* :class:`FaceCropper` finds faces the way upstream recommends (grayscale, ``equalizeHist``,
  ``detectMultiScale(scaleFactor=1.1, minNeighbors=5)``) on a copy downscaled so that the
  smallest face kept (``min_face``, default the crop size) fills the cascade's 24 px window,
  refines each box at full resolution and cuts square crops from the full-resolution image,
  resized with area interpolation.
* :func:`crop_folder` runs it over a folder (a scrape from ``tools/scrape_safebooru.py`` or any
  images), in parallel threads, resumably, writing the project's dataset format
  (``manifest.jsonl`` via :class:`chainer_dcgan.datasets.manifest.ManifestWriter`).
* :func:`find_cascade` / :func:`fetch_cascade`: the cascade file, cached, checked by SHA-256.

OpenCV 5.x has no ``CascadeClassifier``; this needs ``opencv-python-headless<5``.
"""
import concurrent.futures
import dataclasses
import hashlib
import multiprocessing
import os
import threading

import numpy

from chainer_dcgan.datasets.manifest import MANIFEST_NAME, ManifestWriter, read_manifest
from chainer_dcgan.utils import jsonio, parameter_error
from chainer_dcgan.utils.atomic import atomic_write
from chainer_dcgan.utils.cache import cache_dir
from chainer_dcgan.utils.images import is_image_file, read_image, save_image

CASCADE_NAME = "lbpcascade_animeface.xml"
CASCADE_URL = "https://raw.githubusercontent.com/nagadomi/lbpcascade_animeface/master/lbpcascade_animeface.xml"
CASCADE_SHA256 = "9376d30ac38db6bda2a68b88b3b76bbd7e6aa33af47f7f5c76bc88ca75f1ce30"
FACES_DIR = "faces"
DONE_NAME = ".cropped_sources"  # one input per line, appended once all its faces are written


class CascadeNotFound(FileNotFoundError):
    """No cascade file where one was looked for; the message says how to get it."""


class CascadeChecksumError(ValueError):
    """A downloaded cascade whose SHA-256 is not the expected one (nothing is stored)."""


def default_cascade_path():
    """Where :func:`fetch_cascade` stores the cascade: ``<cache>/lbpcascade_animeface.xml`` (the cache:
    :func:`chainer_dcgan.utils.cache.cache_dir`)."""
    return os.path.join(cache_dir(), CASCADE_NAME)


def find_cascade(path=None):
    """The cascade file to use: ``path`` if given, else the cached copy.

    Raises:
        CascadeNotFound: about ``cascade`` (:func:`~chainer_dcgan.utils.parameter_error`), with the command
            that fetches it.
    """
    path = os.fspath(path) if path is not None else default_cascade_path()
    if not os.path.isfile(path):
        raise parameter_error(CascadeNotFound, "cascade", ": the anime-face cascade is not at {}; get it with "
                              "`python tools/fetch_cascade.py` (downloads {} into {}) or give the path of a copy of {}"
                              .format(path, CASCADE_URL, default_cascade_path(), CASCADE_NAME))
    return path


def fetch_cascade(dest=None, url=CASCADE_URL, sha256=CASCADE_SHA256, timeout=60.0):
    """Download the cascade, check its SHA-256 and store it atomically at ``dest`` (default: the cache).

    Returns:
        str: the stored path.
    Raises:
        CascadeChecksumError, requests.RequestException
    """
    import requests

    dest = os.fspath(dest) if dest is not None else default_cascade_path()
    response = requests.get(url, timeout=timeout)
    response.raise_for_status()
    digest = hashlib.sha256(response.content).hexdigest()
    if sha256 is not None and digest != sha256:
        raise CascadeChecksumError("{} has SHA-256 {}, expected {}; not stored".format(url, digest, sha256))
    with atomic_write(dest) as f:
        f.write(response.content)
    return dest


def _cv2():
    import cv2
    if not hasattr(cv2, "CascadeClassifier"):
        raise ImportError("this OpenCV ({}) has no CascadeClassifier (OpenCV 5 dropped it); install "
                          "'opencv-python-headless<5'".format(cv2.__version__))
    return cv2


WINDOW = 24  # the cascade's window side in pixels (lbpcascade_animeface is trained on 24x24)
# Refinement: the coarse box's neighbourhood (this fraction of its side on each side) searched at full
# resolution for faces within this factor of its size.
_REFINE_PAD, _REFINE_RANGE = 1.0, 1.6


class FaceCropper:
    """Detect anime faces and cut square crops.

    Detection runs on a grayscale copy downscaled by ``24 / min_face``, so that the smallest face
    worth keeping fills the cascade's 24 px window (smaller faces would be upscaled into blurry
    crops anyway); each box found is then refined at full resolution in its neighbourhood, and the
    crops are cut from the full-resolution image. ``min_face=24`` detects at full resolution, as
    upstream recommends (grayscale, ``equalizeHist``, ``detectMultiScale(scaleFactor=1.1,
    minNeighbors=5, minSize=(24, 24))``).

    Args:
        cascade (str): path of ``lbpcascade_animeface.xml``; default: the cached copy (:func:`find_cascade`).
        size (int): side of the crops in pixels (96, the faithful image size).
        margin (float): extra context on each side, as a fraction of the face's side (0: the
            detected square itself). The square is shifted, then shrunk, to stay inside the image.
        scale_factor, min_neighbors (float, int): ``detectMultiScale`` settings (upstream: 1.1, 5).
        min_face (int): smallest face side in pixels of the full image; default: ``size``.
        refine (bool): refine downscaled detections at full resolution (boxes within a few pixels
            of a full-resolution search); False keeps the coarse boxes (faster, a few % of the side off).
    """

    def __init__(self, cascade=None, size=96, margin=0.0, scale_factor=1.1, min_neighbors=5, min_face=None,
                 refine=True):
        min_face = size if min_face is None else min_face
        if size <= 0 or margin < 0 or scale_factor <= 1 or min_face < WINDOW:
            raise ValueError("need size > 0, margin >= 0, scale_factor > 1 and min_face >= {}".format(WINDOW))
        cv2 = _cv2()
        self.cascade_path = find_cascade(cascade)
        try:
            self.classifier = cv2.CascadeClassifier(self.cascade_path)
        except (SystemError, cv2.error):  # what OpenCV raises for some damaged XML
            raise ValueError("{} is not a readable OpenCV cascade".format(self.cascade_path)) from None
        if self.classifier.empty():
            raise ValueError("{} is not a readable OpenCV cascade".format(self.cascade_path))
        self.size, self.margin = int(size), float(margin)
        self.scale_factor, self.min_neighbors, self.min_face = float(scale_factor), int(min_neighbors), int(min_face)
        self.refine = bool(refine)

    def settings(self):
        """The constructor's arguments, to build an equal cropper elsewhere (worker processes and threads)."""
        return dict(cascade=self.cascade_path, size=self.size, margin=self.margin, scale_factor=self.scale_factor,
                    min_neighbors=self.min_neighbors, min_face=self.min_face, refine=self.refine)

    @staticmethod
    def grayscale(image):
        """``uint8 (H, W)``: the luma of an RGB ``uint8 (H, W, 3)`` image (a 2-D image is returned as is)."""
        cv2 = _cv2()
        image = numpy.asarray(image)
        gray = cv2.cvtColor(image, cv2.COLOR_RGB2GRAY) if image.ndim == 3 else image
        return numpy.ascontiguousarray(gray, dtype=numpy.uint8)

    def _search(self, gray, min_side, max_side=None):
        extra = {"maxSize": (max_side, max_side)} if max_side else {}
        boxes = self.classifier.detectMultiScale(gray, scaleFactor=self.scale_factor, minNeighbors=self.min_neighbors,
                                                 minSize=(min_side, min_side), **extra)
        return numpy.asarray(boxes, dtype=numpy.int64).reshape(-1, 4)

    def detect_gray(self, gray):
        """Face boxes in a grayscale ``uint8 (H, W)`` image: ``int64 (N, 4)`` rows ``[x, y, w, h]`` in its
        pixels, sorted top to bottom, then left to right."""
        cv2 = _cv2()
        scale = WINDOW / float(self.min_face)
        if scale >= 1:
            boxes = self._search(cv2.equalizeHist(gray), WINDOW)
        else:
            small = cv2.resize(gray, (max(1, int(round(gray.shape[1] * scale))),
                                      max(1, int(round(gray.shape[0] * scale)))), interpolation=cv2.INTER_AREA)
            boxes = numpy.rint(self._search(cv2.equalizeHist(small), WINDOW) / scale).astype(numpy.int64)
            if self.refine and len(boxes):
                boxes = self._refined(cv2.equalizeHist(gray), boxes)
        return boxes[numpy.lexsort((boxes[:, 0], boxes[:, 1]))] if len(boxes) else boxes

    def _refined(self, equalized, boxes):
        # The full-resolution search, limited to each box's neighbourhood and size band; where it
        # finds nothing (the neighbourhood cuts off too many of the face's neighbours) the coarse box stays.
        height, width = equalized.shape
        out = []
        for box in boxes:
            x, y, w, h = (int(v) for v in box)
            pad = int(w * _REFINE_PAD)
            x0, y0 = max(x - pad, 0), max(y - pad, 0)
            found = self._search(equalized[y0:min(y + h + pad, height), x0:min(x + w + pad, width)],
                                 max(WINDOW, int(w / _REFINE_RANGE)), int(w * _REFINE_RANGE) + 1)
            if len(found):
                found += numpy.array([x0, y0, 0, 0])
                box = found[numpy.argmin(numpy.abs(found - box).sum(axis=1))]
            out.append(box)
        return numpy.asarray(out, dtype=numpy.int64).reshape(-1, 4)

    def detect(self, image):
        """Face boxes in an RGB ``uint8 (H, W, 3)`` image (or ``(H, W)`` grayscale).

        Returns:
            ``int64 (N, 4)`` rows ``[x, y, w, h]`` in the image's pixels, sorted top to bottom, then left to right.
        """
        return self.detect_gray(self.grayscale(image))

    def crop_region(self, box, shape):
        """The square ``[x, y, side, side]`` cut for a face ``box`` in an image of ``shape`` (H, W, ...)."""
        x, y, w, h = (int(v) for v in box)
        height, width = shape[:2]
        side = min(int(round(max(w, h) * (1 + 2 * self.margin))), height, width)
        cx, cy = x + w / 2.0, y + h / 2.0
        left = int(round(min(max(cx - side / 2.0, 0), width - side)))
        top = int(round(min(max(cy - side / 2.0, 0), height - side)))
        return [left, top, side, side]

    def crop(self, image, box):
        """``uint8 (size, size, 3)``: the face ``box`` (with the margin) resized with area interpolation."""
        cv2 = _cv2()
        left, top, side, _ = self.crop_region(box, image.shape)
        square = numpy.ascontiguousarray(image[top:top + side, left:left + side])
        if side == self.size:
            return square.copy()
        return cv2.resize(square, (self.size, self.size), interpolation=cv2.INTER_AREA)

    def __call__(self, image):
        """``[(box, region, crop), ...]`` for every face: detection box, cropped square, ``uint8`` crop."""
        return [(box.tolist(), self.crop_region(box, image.shape), self.crop(image, box)) for box in self.detect(image)]


# --------------------------------------------------------------------------------------------
# Folders


@dataclasses.dataclass
class CropSummary:
    """``images_read``: decoded this run; ``faces_written``: crops written this run;
    ``skipped``: unreadable inputs; ``no_face``: images without a face; ``already_done``: inputs of
    an earlier run passed over."""

    images_read: int = 0
    faces_written: int = 0
    skipped: int = 0
    no_face: int = 0
    already_done: int = 0


def list_inputs(input_dir, exclude=None):
    """``[(relative_path, tags, post_id)]`` of the images to crop, in a stable order.

    With ``input_dir/posts.jsonl`` (a scrape) its ``file``, ``tags`` and ``id`` are used; otherwise
    every image file below ``input_dir`` (except under ``exclude``), with no tags.
    """
    input_dir = os.fspath(input_dir)
    posts = os.path.join(input_dir, "posts.jsonl")
    if os.path.exists(posts):
        items = []
        with open(posts, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip() or not line.endswith("\n"):
                    continue
                try:
                    rec = jsonio.expect(jsonio.loads(line), "object", "the line")
                    file = jsonio.expect(rec["file"], "name", "'file'")
                    tags = jsonio.expect(rec.get("tags", []), "strings", "'tags'")
                    post_id = jsonio.expect(rec.get("id"), "int", "'id'", optional=True)
                except KeyError:
                    raise ValueError("{}:{}: not a post record with a 'file'".format(posts, lineno)) from None
                except ValueError as e:
                    raise ValueError("{}:{}: not a post record ({})".format(posts, lineno, e)) from None
                if os.path.isabs(file) or ".." in file.replace("\\", "/").split("/"):
                    raise ValueError("{}:{}: file {!r} is outside the folder".format(posts, lineno, file))
                items.append((file, list(tags), post_id))
        return items
    exclude = os.path.abspath(exclude) if exclude else None
    items = []
    for folder, dirs, files in os.walk(input_dir):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".")
                         and (exclude is None or os.path.abspath(os.path.join(folder, d)) != exclude))
        for name in sorted(files):
            if is_image_file(name) and os.path.isfile(os.path.join(folder, name)):  # no FIFOs
                items.append((os.path.relpath(os.path.join(folder, name), input_dir).replace(os.sep, "/"), [], None))
    return items


def _crop_name(source, k):
    stem = os.path.splitext(source)[0].replace("/", "_")
    shard = hashlib.md5(source.encode("utf-8")).hexdigest()[:2]
    return "{}/{}/{}_{}.png".format(FACES_DIR, shard, stem, k)


_worker_cropper = None


def _init_worker(settings):
    global _worker_cropper
    cv2 = _cv2()
    cv2.setNumThreads(1)  # one process per core already
    _worker_cropper = FaceCropper(**settings)


def _crop_one(job, cropper=None):
    """Read one input, write its crops; ``(source, [(file, box, region)], error or None)``."""
    input_dir, out_dir, source = job
    cropper = cropper or _worker_cropper
    path = os.path.join(input_dir, source)
    if os.path.exists(path) and not os.path.isfile(path):
        return source, None, "not a regular file"  # posts.jsonl may name a FIFO: opening it would wait forever
    try:
        image = read_image(path)
    except Exception as e:  # PIL raises many types for broken or foreign files
        return source, None, "{}: {}".format(type(e).__name__, e)
    faces = []
    for k, (box, region, crop) in enumerate(cropper(image)):
        file = _crop_name(source, k)
        save_image(os.path.join(out_dir, file), crop)
        faces.append((file, box, region))
    return source, faces, None


def crop_folder(input_dir, out_dir, cropper, workers=1, on_image=None, parallel="threads"):
    """Crop every face of every input image into ``out_dir`` (``faces/`` + ``manifest.jsonl``).

    Each manifest line: ``file``, ``tags`` (the post's), ``source`` (input path relative to
    ``input_dir``), ``post_id`` (when known), ``box`` (the detected ``[x, y, w, h]`` in the
    source) and ``crop`` (the square cut, equal to ``box`` without margin). Resumable: inputs of an
    earlier run are passed over and no line is written twice.

    Args:
        cropper (FaceCropper)
        workers (int): parallel workers; 1 runs in this thread.
        parallel (str): ``"threads"`` (one process; measured faster on 2 cores, no start-up) or
            ``"processes"`` (spawned, each imports the package first).
        on_image (callable): ``on_image(source, faces_or_None, summary)`` after each input.
    Returns:
        CropSummary
    """
    input_dir, out_dir = os.fspath(input_dir), os.fspath(out_dir)
    inputs = list_inputs(input_dir, exclude=out_dir)
    done_path = os.path.join(out_dir, DONE_NAME)
    os.makedirs(out_dir, exist_ok=True)
    done = set()
    if os.path.exists(done_path):
        with open(done_path, encoding="utf-8") as f:
            done = {line.rstrip("\n") for line in f if line.endswith("\n")}
    written = set()
    if os.path.exists(os.path.join(out_dir, MANIFEST_NAME)):
        written = {rec["file"] for rec in read_manifest(out_dir)}
    summary = CropSummary()
    meta = {source: (tags, post_id) for source, tags, post_id in inputs}
    jobs = []
    for source, _, _ in inputs:
        if source in done:
            summary.already_done += 1
        else:
            jobs.append((input_dir, out_dir, source))

    with ManifestWriter(out_dir) as manifest, open(done_path, "a", encoding="utf-8") as done_file:
        def record(result):
            source, faces, error = result
            if faces is None:
                summary.skipped += 1
            else:
                summary.images_read += 1
                summary.no_face += not faces
                tags, post_id = meta[source]
                for file, box, region in faces:
                    if file in written:
                        continue
                    rec = {"file": file, "tags": tags, "source": source, "box": box, "crop": region}
                    if post_id is not None:
                        rec["post_id"] = post_id
                    manifest.write(rec)
                    written.add(file)
                    summary.faces_written += 1
                done_file.write(source + "\n")
                done_file.flush()
            if on_image is not None:
                on_image(source, faces if faces is not None else error, summary)

        if workers <= 1 or len(jobs) <= 1:
            for job in jobs:
                record(_crop_one(job, cropper))
        elif parallel == "threads":
            # OpenCV and PIL release the GIL while they work; one cascade per thread (it keeps
            # per-call buffers) and one OpenCV thread per Python thread.
            cv2 = _cv2()
            local, threads = threading.local(), cv2.getNumThreads()

            def crop_in_thread(job):
                if not hasattr(local, "cropper"):
                    local.cropper = FaceCropper(**cropper.settings())
                return _crop_one(job, local.cropper)

            cv2.setNumThreads(1)
            try:
                with concurrent.futures.ThreadPoolExecutor(workers) as pool:
                    for result in pool.map(crop_in_thread, jobs):
                        record(result)
            finally:
                cv2.setNumThreads(threads)
        elif parallel == "processes":
            # spawn, not fork: a forked OpenCV thread pool can deadlock in the child.
            ctx = multiprocessing.get_context("spawn")
            with ctx.Pool(workers, initializer=_init_worker, initargs=(cropper.settings(),)) as pool:
                for result in pool.imap_unordered(_crop_one, jobs, chunksize=1):
                    record(result)
        else:
            raise ValueError("parallel must be 'threads' or 'processes', got {!r}".format(parallel))
    return summary
