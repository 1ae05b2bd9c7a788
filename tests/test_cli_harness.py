"""Every command line against a shared corpus of bad files and arguments.

For each row: exit status 2, stderr's last line is one ``error:`` line (argparse's ``prog: error:``
counts) naming the culprit, no traceback, nothing changed outside the row's --out, and no code
run (hostile files hold a pickle that would create a marker file). The command lines run
in-process (``main(argv)``), a few also as real processes. A new CLI must join ROWS
(:func:`test_every_cli_is_in_the_table`).
"""
import glob
import importlib.util
import json
import os
import shutil
import signal
import subprocess
import sys

import h5py
import numpy
import pytest
from conftest import REPO

from chainer_dcgan.models import Generator
from chainer_dcgan.models.serialization import save_model
from chainer_dcgan.training import seeded_models
from chainer_dcgan.utils.images import save_image
from chainer_dcgan.zspace import inversion, tagging
from PIL import Image  # noqa: I100

MARKER = "PWNED"


class Payload:
    """Unpickling it creates the marker file: what a hostile file could do instead."""

    def __init__(self, marker):
        self.marker = marker

    def __reduce__(self):
        return (open, (self.marker, "w"))


def _hostile(path, arrays, key, marker):
    arrays = dict(arrays)
    arrays[key] = numpy.array([Payload(marker)], dtype=object)
    with open(path, "wb") as f:  # a file object: numpy appends no ".npz"
        numpy.savez(f, **arrays)


def _npy_header(shape, dtype):
    import io

    buf = io.BytesIO()
    numpy.lib.format.write_array_header_1_0(buf, {"descr": dtype, "fortran_order": False, "shape": shape})
    return buf.getvalue()


def _npy_header_only(path, shape, dtype):
    """A .npy file whose header declares ``shape`` of ``dtype`` and which holds no data."""
    path.write_bytes(_npy_header(shape, dtype))


def _with_member(src, dst, key, array=None, header_only=None):
    """A copy of the npz ``src`` whose member ``key`` is ``array``, or only a header declaring
    ``header_only = (shape, dtype)`` (the data absent: a reader must refuse it from the header)."""
    import io
    import zipfile

    with zipfile.ZipFile(str(src)) as z:
        members = {info.filename: z.read(info) for info in z.infolist()}
    if header_only is not None:
        members[key + ".npy"] = _npy_header(*header_only)
    else:
        buf = io.BytesIO()
        numpy.lib.format.write_array(buf, array, allow_pickle=False)
        members[key + ".npy"] = buf.getvalue()
    with zipfile.ZipFile(str(dst), "w") as z:
        for name, data in members.items():
            z.writestr(name, data)


@pytest.fixture(scope="module")
def corpus(tmp_path_factory):
    """The bad-file corpus (read-only for the rows) and a tiny untrained generator."""
    c = tmp_path_factory.mktemp("corpus")
    marker = str(c / MARKER)
    numpy.random.seed(0)
    gen = Generator()
    save_model(str(c / "gen.npz"), gen)
    save_model(str(c / "gen.h5"), gen)
    save_model(str(c / "cond.npz"), seeded_models(0, ["blonde_hair", "blue_hair"], size=64)[0])
    with numpy.load(str(c / "gen.npz")) as npz:
        params = {k: npz[k] for k in npz.files if k != "_meta"}
    _hostile(str(c / "evil.npz"), params, "dc4/W", marker)
    (c / "empty.npz").write_bytes(b"")
    (c / "truncated.npz").write_bytes((c / "gen.npz").read_bytes()[:4096])
    (c / "empty.h5").write_bytes(b"")
    (c / "afile").write_text("a file, not a folder")
    with h5py.File(str(c / "gen.h5"), "r") as src, h5py.File(str(c / "wrong.h5"), "w") as dst:
        def copy(name, obj):
            if isinstance(obj, h5py.Dataset):
                dst[name] = numpy.zeros((3, 3), obj.dtype) if name == "dc4/W" else obj[()]
        src.visititems(copy)
    nan_gen = Generator()
    nan_gen.dc4.W.array[...] = numpy.nan
    save_model(str(c / "nan.npz"), nan_gen)
    # a trainer snapshot with a pickle, and a folder holding it as the newest
    _hostile(str(c / "evil_snapshot"), {}, "updater/iteration", marker)
    os.makedirs(c / "evil_run")
    shutil.copy(c / "evil_snapshot", c / "evil_run" / "snapshot_iter_1")
    # tag classifiers: a hostile and an empty one
    clf = tagging.TagClassifier(["red"], width=4, downscale=4)
    tagging.save_classifier(str(c / "clf.npz"), clf)
    with numpy.load(str(c / "clf.npz")) as npz:
        _hostile(str(c / "evil_clf.npz"), {k: npz[k] for k in npz.files}, "config.json", marker)
    (c / "empty_clf.npz").write_bytes(b"")
    numpy.save(str(c / "evil_z.npy"), numpy.array([Payload(marker)], dtype=object), allow_pickle=True)
    (c / "tags_empty.json").write_text("")
    # HDF5 weights whose dc4/b is read from another local file (external raw storage)
    with h5py.File(str(c / "gen.h5"), "r") as src, h5py.File(str(c / "external.h5"), "w") as dst:
        def copy_external(name, obj):
            if isinstance(obj, h5py.Dataset):
                if name == "dc4/b":
                    dst.create_dataset(name, shape=obj.shape, dtype=obj.dtype,
                                       external=[(str(c / "afile"), 0, obj.dtype.itemsize * obj.size)])
                else:
                    dst[name] = obj[()]
        src.visititems(copy_external)
    # JSON nested far deeper than any reader accepts (a tag-vector file, a z file)
    (c / "deep_tags.json").write_text("[" * 100000 + "]" * 100000)
    (c / "deep_z.json").write_text("[" * 100000 + "]" * 100000)
    os.symlink("/", str(c / "root_link"))
    (c / "bad.xml").write_text("<opencv_storage><cascade>garbage")
    # image folders: tagged, untagged (someone else's), one with a non-UTF-8 manifest
    rs = numpy.random.RandomState(0)
    for folder in ("tagged", "images", "nonutf8"):
        os.makedirs(c / folder)
        for i in range(4):
            save_image(c / folder / "{}.png".format(i), rs.randint(0, 256, (96, 96, 3)).astype(numpy.uint8))
    (c / "tagged" / "manifest.jsonl").write_text("".join(
        '{{"file": "{}.png", "tags": ["{}"]}}\n'.format(i, "red" if i % 2 else "blue") for i in range(4)))
    (c / "nonutf8" / "manifest.jsonl").write_bytes(b'{"file": "0.png"}\n{"file": "1\xff.png"}\n')
    # family 2: files declaring sizes far beyond any machine (headers only: the data is never there)
    _with_member(c / "gen.npz", c / "zdim_huge.npz", "_meta",
                 numpy.frombuffer(json.dumps({"format": 1, "class": "Generator",
                                              "config": {"z_dim": 2000000}}).encode(), numpy.uint8))
    _with_member(c / "gen.npz", c / "unicode_w.npz", "dc4/W", header_only=((64, 3, 4, 4), "<U100000"))
    _with_member(c / "gen.npz", c / "float128_b.npz", "dc4/b", header_only=((3,), "<f16"))
    with h5py.File(str(c / "gen.h5"), "r") as src, h5py.File(str(c / "huge_scalar.h5"), "w") as dst:
        def copy_huge(name, obj):
            if isinstance(obj, h5py.Dataset):
                if name == "bn0l/N":  # an int in the Generator; here 10^12 of them, never written
                    dst.create_dataset(name, shape=(10 ** 12,), dtype="i8", chunks=(1 << 16,), compression="gzip")
                else:
                    dst[name] = obj[()]
        src.visititems(copy_huge)
    with numpy.load(str(c / "clf.npz")) as npz:
        members = {k: npz[k] for k in npz.files}
    config = json.loads(str(members["config.json"]))
    for name, change in (("clf_wide", {"width": 10 ** 6}), ("clf_width_str", {"width": "16"})):
        with open(str(c / (name + ".npz")), "wb") as f:
            numpy.savez(f, **dict(members, **{"config.json": numpy.array(json.dumps(dict(config, **change)))}))
    _npy_header_only(c / "huge_z.npy", (10 ** 7, 10 ** 7), "<f4")
    _npy_header_only(c / "unicode_z.npy", (4, 100), "<U100000")
    # scrapes whose posts.jsonl has fields of the wrong type; exports whose demo.json has
    for name, record in (("posts_tags5", {"file": "0.png", "tags": 5, "id": 1}),
                         ("posts_idabc", {"file": "0.png", "tags": [], "id": "abc"}),
                         ("posts_file_list", {"file": ["0.png"], "tags": []}),
                         ("posts_not_object", [1, 2])):
        shutil.copytree(c / "images", c / name)
        (c / name / "posts.jsonl").write_text(json.dumps(record) + "\n")
    model = {"generator.onnx": {"file": "generator.onnx", "dtype": "float32"}}
    good = {"models": model, "default_model": "generator.onnx", "tags": "tags.json", "z_dim": 100, "image_size": 96}
    for name, change in (("demo_entry_str", {"models": {"generator.onnx": "generator.onnx"}}),
                         ("demo_zdim_str", {"z_dim": "100"}), ("demo_zdim_huge", {"z_dim": 10 ** 9}),
                         ("demo_file_up", {"models": {"g": {"file": "../afile"}}, "default_model": "g"}),
                         ("demo_default_missing", {"default_model": "other.onnx"}),
                         ("demo_first_z", {"first_z": ["a"] * 100}),
                         ("demo_encoder_up", {"encoder": {"file": "../afile"}})):
        os.makedirs(c / name)
        (c / name / "generator.onnx").write_bytes(b"onnx")
        (c / name / "demo.json").write_text(json.dumps(dict(good, **change)))
    # inversion: images no face can come from, and an encoder made for another generator
    save_image(c / "tiny.png", numpy.zeros((10, 10, 3), numpy.uint8))
    save_image(c / "oblong.png", numpy.zeros((100, 200, 3), numpy.uint8))
    Image.fromarray(numpy.zeros((64, 64), numpy.float32), mode="F").save(str(c / "float.tiff"))
    frames = [Image.new("RGB", (64, 64), colour) for colour in ("red", "blue")]
    frames[0].save(str(c / "anim.gif"), save_all=True, append_images=frames[1:])
    numpy.random.seed(1)
    inversion.save_encoder(str(c / "enc_other.npz"), inversion.Encoder(
        width=4, generator=inversion.generator_digest(Generator())))
    return c


def _state(root):
    """Every path below ``root`` with its size and mtime."""
    out = {}
    for folder, dirs, files in os.walk(root):
        for name in dirs + files:
            path = os.path.join(folder, name)
            st = os.lstat(path)
            out[os.path.relpath(path, root)] = (st.st_size, st.st_mtime_ns)
    return out


_MODULES = {}


def _main(script):
    if script not in _MODULES:
        spec = importlib.util.spec_from_file_location("cli_" + os.path.basename(script)[:-3],
                                                      os.path.join(REPO, script))
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
        _MODULES[script] = module
    main = _MODULES[script].main

    def as_run_from_the_shell(argv):  # argparse names the program after sys.argv[0]: the script, not "-c"
        saved, sys.argv = sys.argv, [os.path.join(REPO, script)] + list(argv)
        try:
            return main(argv)
        finally:
            sys.argv = saved
    return as_run_from_the_shell


G = "{c}/gen.npz"
# (script, arguments ({c}: the corpus, {o}: this row's own output folder, holding a copy of evil_run/),
#  text the error line names)
ROWS = [
    ("examples/generate.py", ["{c}/evil.npz", "--out", "{o}/g.png"], "evil.npz: member 'dc4/W' is an object array"),
    ("examples/generate.py", ["{c}/empty.npz", "--out", "{o}/g.png"], "empty.npz: not an npz archive"),
    ("examples/generate.py", ["{c}/truncated.npz", "--out", "{o}/g.png"], "truncated.npz"),
    ("examples/generate.py", ["{c}/empty.h5", "--out", "{o}/g.png"], "empty.h5"),
    ("examples/generate.py", ["{c}/wrong.h5", "--out", "{o}/g.png"], "wrong.h5: dataset 'dc4/W' has shape (3, 3)"),
    ("examples/generate.py", ["{c}/nothere.npz", "--out", "{o}/g.png"], "nothere.npz: no such model file"),
    ("examples/generate.py", [G, "--seed", "-1", "--out", "{o}/g.png"], "--seed: must be in 0..4294967295"),
    ("examples/generate.py", [G, "--out", "{o}"], "is a folder; give a file name"),
    ("examples/generate.py", [G, "--out", "{o}/g.txt"], "'.txt' is not an image format"),
    ("examples/generate.py", [G, "--out", ""], "--out/-o: must not be empty"),
    ("examples/generate.py", [G, "--out", "{o}/g.jpg", "--colors", "64"], "g.jpg: a palette of 64 colours needs"),
    ("examples/generate.py", [G, "--out", "{o}/g.png", "--colors", "300"], "a palette of 300 colours needs 2..256"),
    ("examples/generate.py", [G, "--out", "{c}/afile/g.png"], "afile is not a folder"),
    ("examples/generate.py", [G, "--out", "/sys/g.png"], "cannot write in /sys"),
    ("tools/interpolate.py", ["--model", "{c}/evil.npz", "--out", "{o}/i.png"], "evil.npz: member 'dc4/W'"),
    ("tools/interpolate.py", ["--model", G, "--device", "nonsense", "--out", "{o}/i.png"], "--device nonsense"),
    ("tools/interpolate.py", ["--model", G, "--device", "@cupy:0", "--out", "{o}/i.png"], "--device @cupy:0"),
    ("tools/interpolate.py", ["--model", G, "--z", "{c}/evil_z.npy", "--out", "{o}/i.png"], "evil_z.npy"),
    ("tools/interpolate.py", ["--model", G, "--save-z", "{o}/", "--out", "{o}/i.png"], "--save-z"),
    ("tools/interpolate.py", ["--model", G, "--z", "{c}/gen.npz", "--out", "{o}/i.png"], "gen.npz: not a .npy"),
    ("tools/variations.py", ["--model", G, "--z", "{c}/afile", "--out", "{o}/v.png"], "afile: not a .npy"),
    ("tools/variations.py", ["--model", "{c}/evil.npz", "--out", "{o}/v.png"], "evil.npz: member 'dc4/W'"),
    ("tools/variations.py", ["--model", G, "--strength", "nan", "--out", "{o}/v.png"], "--strength"),
    ("tools/variations.py", ["--model", G, "--seed", "-1", "--out", "{o}/v.png"], "--seed"),
    ("tools/export_weights.py", ["--model", "{c}/evil.npz", "--out", "{o}/e"], "evil.npz: member 'dc4/W'"),
    ("tools/export_weights.py", ["--model", G, "--tags", "{c}/tags_empty.json", "--out", "{o}/e"], "tags_empty.json"),
    ("tools/export_weights.py", ["--model", G, "--tolerance", "nan", "--out", "{o}/e"], "--tolerance"),
    ("tools/export_weights.py", ["--model", G, "--out", "/proc/self/e"], "cannot write in /proc/self"),
    ("tools/export_weights.py", ["--model", G, "--out", "{c}/afile"], "afile exists and is not a folder"),
    ("tools/tag_vectors.py", ["--model", "{c}/evil.npz", "--classifier", "{c}/clf.npz", "--out", "{o}/t.json"],
     "evil.npz: member 'dc4/W'"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/evil_clf.npz", "--out", "{o}/t.json"],
     "evil_clf.npz: not a tag classifier"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/empty_clf.npz", "--out", "{o}/t.json"],
     "empty_clf.npz"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--strengths", "nan"], "--strengths"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--threshold", "2"], "--threshold"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--method", "pca"], "--method"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--reach", "1.5"], "--reach"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--refine", "-3"], "--refine"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--calibrate", "1"], "--calibrate"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--calibrate-samples", "0"],
     "--calibrate-samples"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--max-side-effect", "1.5"],
     "--max-side-effect"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--max-side-effect", "0.6", "--no-effect"],
     "--max-side-effect"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--min-reach", "0.8", "--no-effect"],
     "--min-reach needs the effect measurement"),
    ("tools/tag_vectors.py", ["--model", G, "--dataset", "{c}/tagged", "--tags", "nosuchtag", "--out", "{o}/t.json"],
     "--tags: nosuchtag not on any training image"),  # a library error, told under the tool's flag
    ("tools/tag_vectors.py", ["--model", G, "--dataset", "{c}/tagged", "--min-tag-images", "3", "--out", "{o}/t.json"],
     "--min-tag-images 3: no tag is on at least 3"),  # the library's min_count, under this tool's flag
    ("tools/tag_vectors.py", ["--model", G, "--dataset", "{c}/images", "--out", "{o}/t.json"],
     "no manifest.jsonl there"),
    ("tools/tag_vectors.py", ["--model", G, "--dataset", "{c}/nonutf8", "--out", "{o}/t.json"],
     "manifest.jsonl:2: not UTF-8"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--samples", "4", "--out", "{o}/t.json"],
     "no tag has --min-count 20"),
    ("tools/evaluate.py", ["--model", "{c}/evil.npz", "--n", "6"], "evil.npz: member 'dc4/W'"),
    ("tools/evaluate.py", ["--model", "{c}/empty.npz", "--n", "6"], "empty.npz"),
    ("tools/evaluate.py", ["--untrained", "--seed", "-1"], "--seed"),
    ("tools/evaluate.py", ["--real-baseline", "--degrade", "blur"], "--degrade: expected blur:SIGMA or noise:SIGMA"),
    ("tools/evaluate.py", ["--real-baseline", "--degrade", "noise:-1"], "--degrade: noise: the amount must be"),
    ("tools/evaluate.py", ["--real-baseline", "--degrade", "blur:nan"], "--degrade: blur: the amount must be"),
    ("tools/evaluate.py", ["--untrained", "--degrade", "blur:1"], "--degrade applies to --real-baseline only"),
    ("examples/train_faces.py", ["--out", ""], "--out/-o: must not be empty"),
    ("examples/train_faces.py", ["--out", "{c}/afile"], "afile exists and is not a folder"),
    ("examples/train_faces.py", ["--out", "/proc/dcgan_run"], "cannot write in /proc"),
    ("examples/train_faces.py", ["--out", "/proc/self/dcgan_run"], "cannot write in /proc/self"),
    ("examples/train_faces.py", ["--out", "/sys"], "cannot write in /sys"),
    ("examples/train_faces.py", ["--out", "{o}", "--seed", "-1"], "--seed"),
    ("examples/train_faces.py", ["--out", "{o}", "--batchsize", "0"], "--batchsize"),
    ("examples/train_faces.py", ["--out", "{o}", "--diffaugment", "colour,flip"],
     "--diffaugment: augmentation policy 'colour,flip'"),
    ("examples/train_faces.py", ["--out", "{o}", "--device", "nonsense", "--synthetic-size", "4"], "--device nonsense"),
    ("examples/train_faces.py", ["--out", "{o}", "--resume", "{c}/evil_snapshot", "--synthetic-size", "4",
                                 "--no-progress"], "object array"),
    ("examples/train_faces.py", ["--out", "{o}/evil_run", "--resume", "--synthetic-size", "4", "--no-progress"],
     "no loadable snapshot_iter_*"),
    ("examples/train_faces.py", ["--out", "{o}", "--dataset", "{c}/nonutf8"], "manifest.jsonl:2: not UTF-8"),
    ("examples/train_faces.py", ["--out", "{o}", "--dataset", "{c}/nothere"], "nothere: no such folder"),
    ("tools/crop_faces.py", ["--input", "{c}/images", "--out", "{o}", "--cascade", "{c}/bad.xml"],
     "bad.xml is not a readable OpenCV cascade"),
    ("tools/crop_faces.py", ["--input", "{c}/images", "--out", "{o}", "--scale-factor", "nan"], "--scale-factor"),
    ("tools/crop_faces.py", ["--input", "{c}/images", "--out", "{c}/images"], "is the --input folder"),
    ("tools/crop_faces.py", ["--input", "{c}/nothere", "--out", "{o}"], "nothere is not a folder"),
    ("tools/crop_faces.py", ["--input", "{c}/images", "--out", "/proc/self/faces"], "cannot write in /proc/self"),
    ("tools/make_synthetic_faces.py", ["--out", "{c}/images", "--n", "2", "--quiet"], "already holds images"),
    ("tools/make_synthetic_faces.py", ["--out", "{o}", "--n", "2", "--grid", "{o}/g.txt"], "--grid"),
    ("tools/make_synthetic_faces.py", ["--out", "{o}", "--n", "0"], "--n"),
    ("tools/scrape_safebooru.py", ["--out", "{o}", "--max-posts", "1", "--rating", "bogus"], "unknown rating(s) bogus"),
    ("tools/scrape_safebooru.py", ["--out", "{o}", "--max-posts", "1", "--timeout", "0"], "--timeout"),
    ("tools/scrape_safebooru.py", ["--out", "{c}/afile", "--max-posts", "1"], "afile exists and is not a folder"),
    ("tools/scrape_safebooru.py", ["--out", "/sys/scrape", "--max-posts", "1"], "cannot write in /sys"),
    ("tools/fake_safebooru.py", ["--synthetic", "1", "--port", "70000"], "--port: must be in 0..65535"),
    ("tools/fake_safebooru.py", ["--folder", "{c}/nothere"], "nothere"),
    ("tools/serve_demo.py", ["--export", "{o}", "--port", "70000"], "--port: must be in 0..65535"),
    ("tools/serve_demo.py", ["--export", "{c}/nothere"], "nothere"),
    ("tools/fetch_cascade.py", ["--out", "{o}"], "is a folder; give a file name"),
    ("tools/fetch_cascade.py", ["--out", "{o}/c.xml", "--timeout", "0"], "--timeout"),
    ("tools/fetch_inception.py", ["--out", "{o}"], "is a folder; give a file name"),
    ("tools/fetch_inception.py", ["--compact", "{o}/w.pt"], "--compact: the compact copy's name must end in .npz"),
    ("tools/make_inception_golden.py", ["--out", "{o}"], "is a folder; give a file name"),
    ("tools/serve_demo.py", ["--screenshot", "{o}/page.jpg"], "a screenshot is a PNG"),
    ("examples/generate.py", [G, "--device", "nonsense", "--out", "{o}/g.png"], "--device nonsense"),
    ("examples/generate.py", [G, "--gpu", "-2", "--out", "{o}/g.png"], "--gpu/-g: must be a GPU id >= 0, or -1"),
    ("tools/variations.py", ["--model", G, "--gpu", "0", "--device", "@numpy", "--out", "{o}/v.png"],
     "--device: not allowed with argument --gpu/-g"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--device", "nonsense"],
     "--device nonsense"),
    ("tools/evaluate.py", ["--untrained", "--gpu", "x"], "--gpu/-g: expected an integer"),
    ("examples/train_faces.py", ["--out", "{o}", "--mn-batchnorm"], "--mn-batchnorm needs --communicator"),
    ("examples/train_faces.py", ["--out", "{o}", "--conditional", "--min-tag-count", "100", "--synthetic-size", "4"],
     "--min-tag-count 100: no tag is on at least 100"),
    ("examples/train_faces.py", ["--out", "{o}", "--conditional", "--tags", " , "], "--tags: no tag names given"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf.npz", "--tags", "smiel", "--out", "{o}/t.json"],
     "unknown tag smiel"),
    ("tools/export_weights.py", ["--model", G, "--tags", "{c}/nothere.json", "--out", "{o}/e"],
     "nothere.json: no such tag-vector file"),
    ("examples/generate.py", ["{c}/external.h5", "--out", "{o}/g.png"], "external.h5: dataset 'dc4/b' is stored outside"),
    ("tools/export_weights.py", ["--model", "{c}/external.h5", "--out", "{o}/e"], "external.h5"),
    ("tools/export_weights.py", ["--model", G, "--tags", "{c}/deep_tags.json", "--out", "{o}/e"],
     "deep_tags.json: not a JSON file: nested deeper than 64"),
    ("tools/interpolate.py", ["--model", G, "--z", "{c}/deep_z.json", "--out", "{o}/i.png"], "deep_z.json"),
    # family 2: declared sizes, bounded before anything is allocated
    ("examples/generate.py", ["{c}/zdim_huge.npz", "--out", "{o}/g.png"],
     "zdim_huge.npz: its record gives z_dim 2000000; a model's z_dim is an integer in 1..4096"),
    ("examples/generate.py", ["{c}/unicode_w.npz", "--out", "{o}/g.png"],
     "unicode_w.npz: member 'dc4/W' declares dtype <U100000 (1.14 GiB in all); the Generator holds numbers"),
    ("tools/export_weights.py", ["--model", "{c}/float128_b.npz", "--out", "{o}/e"], "declares dtype <f16"),
    ("examples/generate.py", ["{c}/huge_scalar.h5", "--out", "{o}/g.png"],
     "huge_scalar.h5: dataset 'bn0l/N' declares (1000000000000,) of int64 (7.28 TiB): too large for a int value"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf_wide.npz", "--out", "{o}/t.json"],
     "clf_wide.npz: not a tag classifier saved by save_classifier: config 'width' is 1000000; at most 1024"),
    ("tools/tag_vectors.py", ["--model", G, "--classifier", "{c}/clf_width_str.npz", "--out", "{o}/t.json"],
     "config 'width' must be an integer >= 1, got '16'"),
    ("tools/interpolate.py", ["--model", G, "--z", "{c}/huge_z.npy", "--out", "{o}/i.png"],
     "huge_z.npy: not a .npy or .json file of latent vectors: an array of shape (10000000, 10000000) (float32) needs"),
    ("tools/variations.py", ["--model", G, "--z", "{c}/unicode_z.npy", "--out", "{o}/v.png"],
     "unicode_z.npy: not a .npy or .json file of latent vectors: holds <U100000 values, not numbers"),
    ("examples/generate.py", [G, "--rows", "100000", "--cols", "100000", "--out", "{o}/g.png"],
     "--rows 100000 x --cols 100000: 10000000000 faces of 96 px in one batch need about"),
    ("tools/interpolate.py", ["--model", G, "--steps", "100000000", "--out", "{o}/i.png"],
     "--rows 8 x --steps 100000000: 800000000 faces of 96 px need about"),
    ("tools/interpolate.py", ["--model", G, "--batch-size", "100000000", "--out", "{o}/i.png"],
     "--batch-size 100000000: 100000000 faces of 96 px in one batch need"),
    ("tools/interpolate.py", ["--model", G, "--animation", "{o}/a.gif", "--scale", "1000", "--out", "{o}/i.png"],
     "--keys 4 x --frames-per-key 16 (--scale 1000): 64 animation frames of 96000 px need about"),
    ("tools/variations.py", ["--model", G, "--rows", "1000000", "--cols", "1000", "--out", "{o}/v.png"],
     "--rows 1000000 x --cols 1000: 1000000000 faces"),
    ("examples/train_faces.py", ["--out", "{o}", "--batchsize", "100000000"],
     "--batchsize 100000000: 100000000 training examples of 96 px need about"),
    ("examples/train_faces.py", ["--out", "{o}", "--synthetic-size", "1000000000000"],
     "--synthetic-size 1000000000000: 1000000000000 synthetic faces of 96 px held in memory need about"),
    ("tools/evaluate.py", ["--untrained", "--n", "1000000000000"], "--n 1000000000000: 1000000000000 samples need"),
    ("tools/evaluate.py", ["--untrained", "--batchsize", "1000000000"], "--batchsize 1000000000: 1000000000 Inception"),
    # family 6: the root folder, directly or through a symlink, is never an output folder
    ("examples/train_faces.py", ["--out", "/"], "--out/-o: / is the root folder /; give a folder of its own"),
    ("examples/train_faces.py", ["--out", "{c}/root_link"], "root_link is the root folder /"),
    ("tools/export_weights.py", ["--model", G, "--out", "{c}/root_link"], "root_link is the root folder /"),
    ("tools/crop_faces.py", ["--input", "{c}/images", "--out", "/"], "/ is the root folder /"),
    ("tools/scrape_safebooru.py", ["--out", "{c}/root_link", "--max-posts", "1"], "root_link is the root folder /"),
    # family 5: fields of the wrong type in data the tools read
    ("tools/crop_faces.py", ["--input", "{c}/posts_tags5", "--out", "{o}"],
     "posts.jsonl:1: not a post record ('tags' must be a list of strings, got 5)"),
    ("tools/crop_faces.py", ["--input", "{c}/posts_idabc", "--out", "{o}"],
     "posts.jsonl:1: not a post record ('id' must be an integer, got 'abc')"),
    ("tools/crop_faces.py", ["--input", "{c}/posts_file_list", "--out", "{o}"], "'file' must be a non-empty string"),
    ("tools/crop_faces.py", ["--input", "{c}/posts_not_object", "--out", "{o}"], "the line must be an object"),
    ("tools/serve_demo.py", ["--export", "{c}/demo_entry_str"], "demo.json: 'models'['generator.onnx'] must be an"),
    ("tools/serve_demo.py", ["--export", "{c}/demo_zdim_str"], "demo.json: 'z_dim' must be an integer >= 1, got '100'"),
    ("tools/serve_demo.py", ["--export", "{c}/demo_zdim_huge"], "'z_dim' must be at most 4096"),
    ("tools/serve_demo.py", ["--export", "{c}/demo_file_up"], "must be a file name inside the export"),
    ("tools/serve_demo.py", ["--export", "{c}/demo_default_missing"], "'default_model' 'other.onnx' is not one of"),
    ("tools/serve_demo.py", ["--export", "{c}/demo_first_z"], "'first_z' must be a list of finite numbers"),
    ("tools/serve_demo.py", ["--export", "{c}/demo_encoder_up"],
     "'encoder'['file'] must be a file name inside the export"),
    ("tools/invert.py", ["{c}/afile", "--model", G, "--encoder", "none", "--out", "{o}"], "afile: not an image"),
    ("tools/invert.py", ["{c}/nothere.png", "--model", G, "--encoder", "none", "--out", "{o}"],
     "nothere.png: no such file"),
    ("tools/invert.py", ["{c}/tiny.png", "--model", G, "--encoder", "none", "--out", "{o}"],
     "tiny.png: 10x10 pixels is too small"),
    ("tools/invert.py", ["{c}/oblong.png", "--model", G, "--encoder", "none", "--out", "{o}"],
     "oblong.png: 200x100 pixels is not a face crop"),
    ("tools/invert.py", ["{c}/float.tiff", "--model", G, "--encoder", "none", "--out", "{o}"],
     "float.tiff: an image of mode F"),
    ("tools/invert.py", ["{c}/anim.gif", "--model", G, "--encoder", "none", "--out", "{o}"],
     "anim.gif: an animation of 2 frames"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", G, "--encoder", "{c}/enc_other.npz", "--out", "{o}"],
     "enc_other.npz: made for another generator"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", G, "--encoder", "{c}/gen.npz", "--out", "{o}"],
     "gen.npz: not an encoder file"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", G, "--out", "{o}"], "comes with no encoder"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", "{c}/evil.npz", "--encoder", "none", "--out", "{o}"],
     "evil.npz: member 'dc4/W'"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", G, "--encoder", "none", "--steps", "-1", "--out", "{o}"],
     "--steps"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", G, "--encoder", "none", "--move", "smile", "--out", "{o}"],
     "--move"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", G, "--encoder", "none", "--out", "{c}/afile"],
     "afile exists and is not a folder"),
    ("tools/train_encoder.py", ["--model", "{c}/evil.npz", "--out", "{o}/e.npz"], "evil.npz: member 'dc4/W'"),
    ("tools/train_encoder.py", ["--model", G, "--out", "{o}/e.npz", "--iterations", "-1"], "--iterations"),
    ("tools/train_encoder.py", ["--model", G, "--out", "{o}/e.npz", "--real-iterations", "1", "--real-folder",
                                "{c}/nothere"], "--real-folder"),
    ("tools/train_encoder.py", ["--model", G, "--out", "/sys/e.npz"], "cannot write in /sys"),
    ("tools/train_encoder.py", ["--model", G, "--out", "{o}/e.npz", "--batch-size", "100000000"],
     "--batch-size 100000000: 100000000 training examples of 96 px need about"),
    ("tools/train_encoder.py", ["--model", G, "--out", "{o}/e.npz", "--real-iterations", "1", "--real-count",
                                "1000000000000"], "--real-count 1000000000000: 1000000000000 embedded faces"),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", G, "--encoder", "none", "--candidates", "1000000000000",
                         "--out", "{o}"], "--candidates 1000000000000: 1000000000000 random faces"),
    ("tools/train_encoder.py", ["--model", G, "--out", "{o}/e.npz", "--feature-weight", "1"],
     "gen.npz comes with no tag classifier; give --classifier"),
    ("tools/train_encoder.py", ["--model", G, "--out", "{o}/e.npz", "--feature-weight", "1", "--classifier",
                                "{c}/evil_clf.npz"], "evil_clf.npz"),
    ("tools/export_weights.py", ["--model", G, "--encoder", "{c}/enc_other.npz", "--out", "{o}/e"],
     "enc_other.npz: made for another generator"),
    # the one exporter: what only an unconditional model takes is refused for a conditional one
    ("tools/export_weights.py", ["--model", "{c}/cond.npz", "--float16", "--out", "{o}/e"],
     "cond.npz is conditional on 2 tags"),
    ("tools/export_weights.py", ["--model", "{c}/cond.npz", "--encoder", "{c}/enc_other.npz", "--out", "{o}/e"],
     "cond.npz is conditional on 2 tags"),
]


def test_every_cli_is_in_the_table():
    scripts = {os.path.relpath(p, REPO) for pattern in ("examples/*.py", "tools/*.py")
               for p in glob.glob(os.path.join(REPO, pattern))}
    assert scripts == {row[0] for row in ROWS}


def _fill(args, corpus, out):
    return [a.replace("{c}", str(corpus)).replace("{o}", str(out)) for a in args]


@pytest.mark.parametrize("script, args, culprit", ROWS,
                         ids=["{}:{}".format(os.path.basename(r[0])[:-3], i) for i, r in enumerate(ROWS)])
def test_bad_input_gives_one_error_line(corpus, tmp_path, capsys, script, args, culprit):
    out = tmp_path / "out"
    os.makedirs(out)
    shutil.copytree(corpus / "evil_run", out / "evil_run")  # a run folder whose newest snapshot is hostile
    before, repo_before = _state(corpus), sorted(os.listdir(REPO))
    capsys.readouterr()
    try:
        code = _main(script)(_fill(args, corpus, out))
    except SystemExit as e:  # argparse
        code = e.code
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert code == 2, err[-2000:]
    assert lines and "Traceback" not in err, err[-2000:]
    last = lines[-1]
    assert last.startswith("error: ") or (": error: " in last and last.split(": error: ")[0].endswith(".py")), last
    assert culprit in last, last
    assert not os.path.exists(corpus / MARKER), "a hostile file ran code"
    assert _state(corpus) == before, "files outside --out changed"
    assert sorted(os.listdir(REPO)) == repo_before


# Every command line that loads a generator warns about NaN/infinite weights (one line, before it goes on),
# with its documented exit status (export_weights: 2, it refuses to fold non-finite weights into ONNX).
NAN_ROWS = [
    ("examples/generate.py", ["{m}", "--out", "{o}/g.png", "--rows", "1", "--cols", "1"], 0),
    ("tools/interpolate.py", ["--model", "{m}", "--out", "{o}/i.png", "--rows", "1", "--steps", "2"], 0),
    ("tools/variations.py", ["--model", "{m}", "--out", "{o}/v.png", "--rows", "1", "--cols", "1"], 0),
    ("tools/export_weights.py", ["--model", "{m}", "--out", "{o}/e", "--check-n", "1"], 2),
    ("tools/tag_vectors.py", ["--model", "{m}", "--classifier", "{c}/clf.npz", "--samples", "4", "--out", "{o}/t.json"],
     2),  # no tag has --min-count 20
    ("tools/evaluate.py", ["--model", "{m}", "--no-fid", "--n", "6", "--synthetic-size", "8", "--no-progress"], 0),
    ("tools/invert.py", ["{c}/tagged/0.png", "--model", "{m}", "--encoder", "none", "--candidates", "1", "--steps", "0",
                         "--out", "{o}/inv"], 0),
    ("tools/train_encoder.py", ["--model", "{m}", "--out", "{o}/e.npz", "--iterations", "1", "--batch-size", "1",
                                "--width", "4"], 0),
]


@pytest.mark.parametrize("script, args, code", NAN_ROWS, ids=[os.path.basename(r[0])[:-3] for r in NAN_ROWS])
def test_nan_weights_warn(corpus, tmp_path, capsys, script, args, code):
    capsys.readouterr()
    fill = [a.replace("{m}", str(corpus / "nan.npz")) for a in _fill(args, corpus, tmp_path)]
    assert _main(script)(fill) == code
    err = capsys.readouterr().err
    assert "Traceback" not in err
    warnings = [line for line in err.splitlines() if line.startswith("warning: ")]
    assert len(warnings) == 1 and "nan.npz: 1 parameter arrays hold NaN" in warnings[0] and "/dc4/W" in warnings[0], err
    if script.endswith("export_weights.py"):  # the refusal names the weights, not a folding step
        assert "error: the generator's weights hold NaN or infinite values (/dc4/W)" in err, err


def test_finite_weights_do_not_warn(corpus, tmp_path, capsys):
    capsys.readouterr()
    assert _main("examples/generate.py")([str(corpus / "gen.npz"), "--out", str(tmp_path / "h.png"),
                                          "--rows", "1", "--cols", "1"]) == 0
    assert "warning" not in capsys.readouterr().err


@pytest.mark.skipif(not os.path.ismount("/dev/pts"), reason="/dev/pts is not a devpts mount here")
def test_out_root_cannot_write_in_fails_before_training(tmp_path):
    """os.access says root may write in /dev/pts; creating a file there fails, and must before training."""
    proc = subprocess.run([sys.executable, os.path.join(REPO, "examples/train_faces.py"), "--out", "/dev/pts/dcgan_run",
                           "--synthetic-size", "4", "--batchsize", "2", "--iteration", "1", "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=str(tmp_path),
                          env=dict(os.environ, PYTHONPATH=REPO))
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 2 and "Traceback" not in proc.stderr, proc.stderr[-2000:]
    assert "error: argument --out/-o: cannot write in /dev/pts " in lines[-1], proc.stderr
    assert not os.path.exists("/dev/pts/dcgan_run") and os.listdir(tmp_path) == []


@pytest.mark.parametrize("script, args", [
    ("examples/generate.py", ["{c}/evil.npz", "--out", "{o}/g.png"]),
    ("examples/train_faces.py", ["--out", "{o}", "--resume", "{c}/evil_snapshot", "--synthetic-size", "4"]),
])
def test_as_real_processes(corpus, tmp_path, script, args):
    """The same as a user runs them: a real process, its exit status and stderr."""
    proc = subprocess.run([sys.executable, os.path.join(REPO, script)] + _fill(args, corpus, tmp_path),
                          capture_output=True, text=True, timeout=300, cwd=str(tmp_path),
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 2, proc.stderr[-2000:]
    assert "Traceback" not in proc.stderr and proc.stderr.strip().splitlines()[-1].startswith("error: ")
    assert not os.path.exists(corpus / MARKER)


# Family 6: signals. A real signal, sent by the process to itself at a chosen moment (inside the
# write that must not be torn), through the scripts' own entry point (cli.run_command).
_SIGNAL_AT = """
import os, runpy, signal, sys
import numpy
signum, marker = int(sys.argv[1]), sys.argv[2]
if marker.startswith("tmpsnapshot"):  # a snapshot: within its archive, as its first member is written
    import chainer_dcgan.training as training
    armed, write_npz, write_array = [], training.write_npz, numpy.lib.format.write_array
    def write_marked(path, *args, **kwargs):
        if marker in str(path):
            armed.append(path)
        return write_npz(path, *args, **kwargs)
    def write_then_signal(*args, **kwargs):
        if armed:
            os.kill(os.getpid(), signum)
        return write_array(*args, **kwargs)
    training.write_npz, numpy.lib.format.write_array = write_marked, write_then_signal
if marker == "tags.json":  # the export: between the models and the manifest
    import chainer_dcgan.export as export
    write = export.write_tag_vectors
    def write_tags(path, *args, **kwargs):
        os.kill(os.getpid(), signum)
        return write(path, *args, **kwargs)
    export.write_tag_vectors = write_tags
sys.argv = sys.argv[3:]
runpy.run_path(sys.argv[0], run_name="__main__")
"""


def _run_signalled(script, args, signum, marker, cwd):
    return subprocess.run([sys.executable, "-c", _SIGNAL_AT, str(int(signum)), marker, os.path.join(REPO, script)]
                          + [str(a) for a in args], capture_output=True, text=True, timeout=300, cwd=str(cwd),
                          env=dict(os.environ, PYTHONPATH=REPO))


def _one_line(proc, signum):
    lines = proc.stderr.strip().splitlines()
    assert proc.returncode == 128 + signum, proc.stderr[-3000:]
    assert "Traceback" not in proc.stderr and "Exception in main training loop" not in proc.stderr, proc.stderr
    assert lines[-1] == "error: interrupted by {}; files written before are whole, the one being written was not " \
                        "put in place".format(signal.Signals(signum).name), lines[-3:]


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_snapshot_ends_with_one_line_and_loses_nothing(tmp_path, signum):
    out = tmp_path / "run"
    proc = _run_signalled("examples/train_faces.py", ["--out", out, "--synthetic-size", "4", "--batchsize", "2",
                                                      "--iteration", "2", "--snapshot-interval", "1", "--no-progress"],
                          signum, "tmpsnapshot_iter_2", tmp_path)
    _one_line(proc, signum)
    from chainer_dcgan.training.snapshots import read_snapshot
    assert read_snapshot(str(out / "snapshot_iter_1"))[0] == 1  # the one saved before is whole
    names = os.listdir(out)
    assert "snapshot_iter_2" not in names and not any(n.startswith("tmp") for n in names), names


@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM], ids=["SIGINT", "SIGTERM"])
def test_a_signal_mid_export_leaves_the_old_export_whole(corpus, tmp_path, signum):
    """Before: an export of one generator. A signal between writing the new models and the manifest: the
    folder holds the old export exactly (no new generator.onnx beside the old demo.json)."""
    out = tmp_path / "e"
    assert _main("tools/export_weights.py")(["--model", str(corpus / "gen.npz"), "--out", str(out),
                                             "--check-n", "1"]) == 0
    (out / "README.mine").write_text("the user's own file")
    before = {n: (out / n).read_bytes() for n in os.listdir(out)}
    other = tmp_path / "other.npz"
    numpy.random.seed(1)
    save_model(str(other), Generator())
    proc = _run_signalled("tools/export_weights.py", ["--model", other, "--out", out, "--check-n", "1"], signum,
                          "tags.json", tmp_path)
    _one_line(proc, signum)
    assert {n: (out / n).read_bytes() for n in os.listdir(out)} == before
    assert sorted(os.listdir(tmp_path)) == ["e", "other.npz"]  # no temporary folder left beside it
    # and without a signal the new export replaces it whole, the user's file kept
    proc = subprocess.run([sys.executable, os.path.join(REPO, "tools/export_weights.py"), "--model", str(other),
                           "--out", str(out), "--check-n", "1"], capture_output=True, text=True, timeout=300,
                          env=dict(os.environ, PYTHONPATH=REPO))
    assert proc.returncode == 0, proc.stderr
    after = {n: (out / n).read_bytes() for n in os.listdir(out)}
    assert after["README.mine"] == before["README.mine"] and after["generator.onnx"] != before["generator.onnx"]
