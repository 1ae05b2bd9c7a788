"""Shipped models (chainer_dcgan.models.pretrained): addressing by name, the demo's cached export, serve_demo's
default; and, once one is shipped, the default model itself and its page."""
import json
import os
import subprocess
import sys
import urllib.request

import numpy
import pytest
from conftest import REPO, run_script
from PIL import Image

from chainer_dcgan import Generator, zspace
from chainer_dcgan.demo import shipped
from chainer_dcgan.models import pretrained
from chainer_dcgan.models.serialization import ModelFileError, load_generator, read_meta, save_model
from chainer_dcgan.zspace.tagging import (TagEffect, TagVector, clean_sliders, load_classifier, read_tag_vectors,
                                          write_tag_vectors)

MAX_BYTES = 10 * 1000 * 1000
SHIPPED = os.path.isfile(os.path.join(pretrained.ROOT, pretrained.DEFAULT, pretrained.GENERATOR))
needs_default = pytest.mark.skipif(not SHIPPED, reason="no default model shipped in chainer_dcgan/pretrained yet")


@pytest.fixture
def shipped_root(tmp_path, monkeypatch):
    """A pretrained folder holding one model, "default": a seeded untrained G in float16 and 3 tag vectors."""
    folder = tmp_path / "pretrained" / pretrained.DEFAULT
    folder.mkdir(parents=True)
    numpy.random.seed(3)
    gen = Generator()
    save_model(str(folder / pretrained.GENERATOR), gen, dtype=numpy.float16)
    rs = numpy.random.RandomState(0)
    write_tag_vectors(str(folder / pretrained.TAGS),
                      [TagVector("tag{}".format(i), rs.uniform(-1, 1, 100), 10) for i in range(3)])
    monkeypatch.setattr(pretrained, "ROOT", str(tmp_path / "pretrained"))
    return folder, gen


def test_names_resolve_and_a_path_wins(shipped_root, tmp_path, monkeypatch):
    folder, gen = shipped_root
    assert pretrained.names() == [pretrained.DEFAULT]
    assert pretrained.resolve(pretrained.DEFAULT) == str(folder / pretrained.GENERATOR)
    loaded = load_generator(pretrained.DEFAULT)
    assert numpy.array_equal(loaded.dc1.W.array, gen.dc1.W.array.astype(numpy.float16).astype(numpy.float32))
    assert loaded.dc1.W.dtype == numpy.float32
    monkeypatch.chdir(tmp_path)
    (tmp_path / pretrained.DEFAULT).write_bytes(b"")  # a file called "default" in the working folder wins
    assert pretrained.resolve(pretrained.DEFAULT) == pretrained.DEFAULT
    with pytest.raises(ModelFileError, match="shipped models, by name: default"):
        load_generator("nosuchmodel")
    with pytest.raises(pretrained.PretrainedError, match="no shipped model named 'x'"):
        pretrained.file_of("x")
    with pytest.raises(pretrained.PretrainedError, match="has no classifier.npz"):
        pretrained.file_of(pretrained.DEFAULT, pretrained.CLASSIFIER)


def test_float16_files_are_half_the_size_and_keep_their_record(shipped_root, tmp_path):
    folder, gen = shipped_root
    save_model(str(tmp_path / "f32.npz"), gen)
    assert os.path.getsize(folder / pretrained.GENERATOR) < 0.6 * os.path.getsize(tmp_path / "f32.npz")
    with numpy.load(str(folder / pretrained.GENERATOR)) as npz:
        assert {npz[k].dtype for k in npz.files if npz[k].dtype.kind == "f"} == {numpy.dtype(numpy.float16)}
    assert read_meta(str(folder / pretrained.GENERATOR))["class"] == "Generator"
    with pytest.raises(ValueError, match="npz"):
        save_model(str(tmp_path / "g.h5"), gen, dtype=numpy.float16)


def test_files_made_to_ship_are_deflated_and_training_files_stored(shipped_root, tmp_path):
    """float16 files (shipped) are deflated; float32 ones (a training's) are stored, unless asked."""
    import zipfile

    _, gen = shipped_root
    save_model(str(tmp_path / "f32.npz"), gen)
    save_model(str(tmp_path / "f32z.npz"), gen, compress=True)
    save_model(str(tmp_path / "f16.npz"), gen, dtype=numpy.float16)
    save_model(str(tmp_path / "f16s.npz"), gen, dtype=numpy.float16, compress=False)
    kinds = {}
    for name in ("f32", "f32z", "f16", "f16s"):
        with zipfile.ZipFile(str(tmp_path / (name + ".npz"))) as z:
            kinds[name] = {info.compress_type for info in z.infolist()}
    assert kinds == {"f32": {zipfile.ZIP_STORED}, "f32z": {zipfile.ZIP_DEFLATED}, "f16": {zipfile.ZIP_DEFLATED},
                     "f16s": {zipfile.ZIP_STORED}}
    for name in ("f32", "f32z"):  # the same arrays either way
        numpy.testing.assert_array_equal(load_generator(str(tmp_path / (name + ".npz"))).dc1.W.array, gen.dc1.W.array)


def test_demo_export_is_made_once_and_cached(shipped_root, tmp_path, monkeypatch):
    monkeypatch.setenv("CHAINER_DCGAN_CACHE", str(tmp_path / "package-cache"))
    first = shipped.demo_export(pretrained.DEFAULT)  # into the package's cache folder by default
    cache = tmp_path / "package-cache" / "demo"
    assert os.path.dirname(first) == str(cache)
    manifest = json.load(open(os.path.join(first, "demo.json")))
    assert manifest["tag_count"] == 3 and manifest["z_dim"] == 100
    stamp = os.stat(os.path.join(first, "demo.json")).st_mtime_ns
    assert shipped.demo_export(pretrained.DEFAULT, cache_dir=str(cache)) == first
    assert os.stat(os.path.join(first, "demo.json")).st_mtime_ns == stamp
    assert [p for p in os.listdir(cache) if p.startswith(".")] == []  # no temporary folder left
    # Another model file, another export.
    numpy.random.seed(4)
    save_model(str(shipped_root[0] / pretrained.GENERATOR), Generator(), dtype=numpy.float16)
    assert shipped.demo_export(pretrained.DEFAULT, cache_dir=str(cache)) != first


def test_a_shipped_first_face_reaches_the_demo_manifest_and_a_new_one_a_new_export(shipped_root, tmp_path):
    folder, _ = shipped_root
    cache = str(tmp_path / "cache")
    without = shipped.demo_export(pretrained.DEFAULT, cache_dir=cache)
    assert "first_z" not in json.load(open(os.path.join(without, "demo.json")))
    z = [round(v, 4) for v in numpy.random.RandomState(2).uniform(-1, 1, 100).tolist()]
    (folder / pretrained.FIRST_FACE).write_text(json.dumps({"z": z, "seed": 2}))
    with_face = shipped.demo_export(pretrained.DEFAULT, cache_dir=cache)
    assert with_face != without
    manifest = json.load(open(os.path.join(with_face, "demo.json")))
    numpy.testing.assert_array_equal(numpy.float32(manifest["first_z"]), numpy.float32(z))
    (folder / pretrained.FIRST_FACE).write_text('{"z": "nope"}')
    with pytest.raises(pretrained.PretrainedError, match="first_face.json: not a first-face record"):
        shipped.demo_export(pretrained.DEFAULT, cache_dir=cache)


def test_serve_demo_without_a_shipped_model_says_so(tmp_path):
    empty = tmp_path / "none"
    empty.mkdir()
    code = ("import sys; from chainer_dcgan.models import pretrained; pretrained.ROOT = sys.argv[1]; "
            "sys.argv = sys.argv[:1] + ['--port', '0']; import runpy; "
            "runpy.run_path({!r}, run_name='__main__')".format(os.path.join(REPO, "tools", "serve_demo.py")))
    proc = subprocess.run([sys.executable, "-c", code, str(empty)], capture_output=True, text=True, timeout=120,
                          env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path / "cache")))
    assert proc.returncode != 0
    assert "no shipped model named 'default'" in proc.stderr and "Traceback" not in proc.stderr


# The default model itself, once shipped.

@needs_default
@pytest.mark.parametrize("name", pretrained.names())
def test_each_shipped_model_is_small_float16_and_documented(name):
    files = [pretrained.file_of(name, what)
             for what in (pretrained.GENERATOR, pretrained.TAGS, pretrained.CLASSIFIER, pretrained.CARD)]
    assert sum(os.path.getsize(f) for f in files[:2]) < MAX_BYTES
    with numpy.load(files[0]) as npz:
        assert {npz[k].dtype for k in npz.files if npz[k].dtype.kind == "f"} == {numpy.dtype(numpy.float16)}
    card = open(files[3], encoding="utf-8").read()
    for fact in ("examples/train_faces.py", "FID", "procedural", "`{}`".format(name)):
        assert fact in card
    gen = load_generator(name)
    assert read_tag_vectors(files[1], gen.z_dim) and load_classifier(files[2]).tags


@needs_default
def test_default_model_draws_varied_faces_and_generate_takes_its_name(tmp_path):
    gen = load_generator(pretrained.DEFAULT)
    x = zspace.generate(gen, gen.make_hidden(8, random_state=0))
    assert x.shape == (8, 3, 96, 96) and numpy.isfinite(x).all()
    assert x.std(axis=0).mean() > 0.05  # different z, different faces
    run_script("examples/generate.py", pretrained.DEFAULT, "--out", tmp_path / "grid.png")
    assert numpy.asarray(Image.open(tmp_path / "grid.png").convert("RGB")).std() > 20


@needs_default
def test_default_tag_vectors_fit_and_at_least_ten_rise():
    gen = load_generator(pretrained.DEFAULT)
    tags = read_tag_vectors(pretrained.file_of(pretrained.DEFAULT, pretrained.TAGS), gen.z_dim)
    rising = [tv.name for tv in tags if tv.extra["effect"]["shifted"]["1"] > tv.extra["effect"]["base"]]
    assert len(tags) >= 10 and len(rising) >= 10, rising
    # issue 21's bar for a slider, by the measurement recorded in the file (tools/tag_vectors.py, 200 held-out z0)
    effects = [TagEffect(tv.name, e["base"], {1.0: e["shifted"]["1"]}, {"others": e["off_target"]}, 1.0)
               for tv in tags for e in [tv.extra["effect"]]]
    assert len(clean_sliders(effects)) >= 20, clean_sliders(effects)  # 20 of 26 recorded (issue 21's bar: 20)
    clf = load_classifier(pretrained.file_of(pretrained.DEFAULT, pretrained.CLASSIFIER))
    assert {tv.name for tv in tags} <= set(clf.tags)


@pytest.fixture(scope="module")
def default_page(tmp_path_factory):
    from chainer_dcgan.demo.server import DemoServer, find_chromium, launch_chromium

    if not SHIPPED:
        pytest.skip("no default model shipped yet")
    if find_chromium() is None:
        pytest.skip("Chromium is not installed (.ci/install-system-deps runs apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    export_dir = shipped.demo_export(pretrained.DEFAULT, cache_dir=str(tmp_path_factory.mktemp("cache")))
    with DemoServer(export_dir) as server, sync_playwright() as p:
        browser = launch_chromium(p)
        page = browser.new_page()
        page.goto(server.url)
        page.evaluate("window.dcganDemo.ready")
        yield page
        browser.close()


def _page_faces(page, z0s, sliders):
    """The canvas for each z0 with ``sliders``, as float32 (N, 3, 96, 96) in the training data's scale."""
    faces = []
    for z0 in z0s:
        page.evaluate("a => { dcganDemo.setZ0(a[0]); dcganDemo.setStrength(1); dcganDemo.setSliders(a[1]); "
                      "return dcganDemo.draw(); }", [z0.tolist(), sliders])
        rgba = numpy.array(page.evaluate("dcganDemo.pixels()"), numpy.uint8).reshape(96, 96, 4)
        faces.append((rgba[..., :3].transpose(2, 0, 1).astype(numpy.float32) - 128) / 128)
    return numpy.stack(faces)


def test_a_default_slider_moves_the_face_towards_its_tag(default_page):
    page = default_page
    tags = page.evaluate("dcganDemo.tags")
    assert len(tags) >= 10 and page.locator("#sliders input[type=range]").count() == len(tags)
    vectors = read_tag_vectors(pretrained.file_of(pretrained.DEFAULT, pretrained.TAGS))
    gain = {tv.name: tv.extra["effect"]["shifted"]["1"] - tv.extra["effect"]["base"] for tv in vectors}
    name = max(gain, key=gain.get)  # the tag whose vector the tool measured to work best
    clf = load_classifier(pretrained.file_of(pretrained.DEFAULT, pretrained.CLASSIFIER))
    k, column = tags.index(name), clf.tags.index(name)
    z0s = numpy.random.RandomState(0).uniform(-1, 1, (8, 100)).astype(numpy.float32)
    off = [0.0] * len(tags)
    on = list(off)
    on[k] = 1.0
    before = clf.predict_proba(_page_faces(page, z0s, off))[:, column]
    after = clf.predict_proba(_page_faces(page, z0s, on))[:, column]
    assert after.mean() > before.mean() + 0.2, (name, before, after)
    assert (after > before).mean() >= 0.75


def test_the_default_page_brings_your_own_face_with_the_shipped_encoder(default_page, tmp_path):
    """The upload path on the shipped model: z0 is Chainer's E(image) with the shipped encoder, the face its G."""
    from chainer_dcgan.datasets.synthetic import SyntheticFaces
    from chainer_dcgan.export import TOLERANCE
    from chainer_dcgan.zspace import inversion

    page = default_page
    assert page.is_visible("#own-face")
    face = SyntheticFaces(1, seed=1).image(0)  # an embedded face neither G nor E was trained on
    Image.fromarray(face).save(str(tmp_path / "mine.png"))
    page.evaluate("n => dcganDemo.setSliders(new Array(n).fill(0))", len(page.evaluate("dcganDemo.tags")))
    before = page.evaluate("dcganDemo.drawn")
    page.set_input_files("#own-file", str(tmp_path / "mine.png"))
    page.wait_for_function("n => dcganDemo.drawn > n", arg=before)
    page.evaluate("dcganDemo.idle()")
    gen = load_generator(pretrained.DEFAULT)
    want = inversion.encode(inversion.load_encoder(pretrained.DEFAULT, gen), face[None])[0]
    z0 = numpy.array(page.evaluate("dcganDemo.getZ0()"), numpy.float32)
    assert numpy.abs(z0 - want).max() <= TOLERANCE
    drawn = _page_faces(page, [z0], [0.0] * len(page.evaluate("dcganDemo.tags")))[0]
    numpy.testing.assert_allclose(drawn, numpy.clip(gen.generate(z0[None])[0], -1, 127 / 128), atol=1.5 / 128)


@needs_default
def test_serve_demo_without_export_serves_the_default(tmp_path):
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "serve_demo.py"), "--port", "0", "--quiet"],
                            stdout=subprocess.PIPE, text=True, env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path)))
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving the demo at http://127.0.0.1:"), line
        with urllib.request.urlopen(line.split()[4] + "export/tags.json", timeout=30) as r:
            assert len(json.load(r)["tags"]) >= 10
    finally:
        proc.terminate()
        proc.wait(timeout=30)


# Shipped names wherever a file of that kind is taken, through the real command lines.

def _one_error_line(proc, *names):
    assert proc.returncode == 2, proc.stderr[-3000:]
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("error:") and "Traceback" not in proc.stderr, proc.stderr
    for name in names:
        assert name in lines[0]


def test_resolve_gives_each_kind_of_shipped_file(shipped_root, tmp_path, monkeypatch):
    folder, _ = shipped_root
    assert pretrained.resolve(pretrained.DEFAULT, pretrained.TAGS) == str(folder / pretrained.TAGS)
    assert pretrained.companion(pretrained.DEFAULT, pretrained.TAGS) == str(folder / pretrained.TAGS)
    assert pretrained.companion(pretrained.DEFAULT, pretrained.CLASSIFIER) is None  # this one has none
    assert pretrained.companion(str(folder / pretrained.GENERATOR), pretrained.TAGS) is None  # a path
    assert len(read_tag_vectors(pretrained.DEFAULT, 100)) == 3
    from chainer_dcgan.zspace.tagging import TaggedDatasetError, TagVectorFileError

    with pytest.raises(TaggedDatasetError, match="shipped model 'default' has no classifier.npz"):
        load_classifier(pretrained.DEFAULT)
    with pytest.raises(TaggedDatasetError, match="nothere.npz: no such classifier file .shipped models, by name: "):
        load_classifier(str(tmp_path / "nothere.npz"))
    with pytest.raises(TagVectorFileError, match="nosuch: no such tag-vector file .shipped models, by name: default"):
        read_tag_vectors("nosuch")
    monkeypatch.chdir(tmp_path)
    (tmp_path / pretrained.DEFAULT).write_text("{}")  # a file called "default" in the working folder wins
    assert pretrained.resolve(pretrained.DEFAULT, pretrained.TAGS) == pretrained.DEFAULT
    assert pretrained.companion(pretrained.DEFAULT, pretrained.TAGS) is None


@needs_default
def test_tag_vectors_takes_the_shipped_classifier_and_only_the_tags_asked_for(tmp_path):
    out = tmp_path / "tags.json"
    run_script("tools/tag_vectors.py", "--model", "default", "--classifier", "default", "--tags", "smile",
               "--samples", 60, "--min-count", 3, "--no-effect", "--out", out)
    assert [tv.name for tv in read_tag_vectors(str(out))] == ["smile"]
    proc = run_script("tools/tag_vectors.py", "--model", "default", "--classifier", "default", "--tags", "smile,smiel",
                      "--out", out, check=False)
    _one_error_line(proc, "unknown tag smiel", "the classifier knows: animal_ears")


@needs_default
def test_evaluate_takes_the_shipped_classifier(tmp_path):
    from chainer_dcgan.models import ConditionalGenerator

    numpy.random.seed(0)
    save_model(str(tmp_path / "cond.npz"), ConditionalGenerator(["smile", "long_hair"]))
    proc = run_script("tools/evaluate.py", "--model", tmp_path / "cond.npz", "--classifier", "default", "--no-fid",
                      "--agreement-n", 8, "--synthetic-size", 40, "--no-progress", "--json")
    assert set(json.loads(proc.stdout)["agreement"]["tags"]) == {"smile", "long_hair"}


@needs_default
def test_export_weights_takes_shipped_tag_vectors(tmp_path):
    shipped = len(read_tag_vectors(pretrained.file_of(pretrained.DEFAULT, pretrained.TAGS)))
    numpy.random.seed(0)
    save_model(str(tmp_path / "g.npz"), Generator())
    for args, sliders in [(["--model", "default"], shipped),  # the model's own vectors
                          (["--model", tmp_path / "g.npz", "--tags", "default"], shipped),
                          (["--model", "default", "--no-tags"], 0)]:
        out = tmp_path / "export{}".format(len(os.listdir(tmp_path)))
        proc = run_script("tools/export_weights.py", *args, "--check-n", 1, "--out", out)
        assert json.load(open(out / "demo.json"))["tag_count"] == sliders, (args, proc.stdout)
    proc = run_script("tools/export_weights.py", "--model", "default", "--tags", "nosuch", "--out", tmp_path / "e",
                      check=False)
    _one_error_line(proc, "nosuch: no such tag-vector file")


@needs_default
def test_serve_demo_takes_a_shipped_name_for_export(tmp_path):
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "serve_demo.py"), "--export", "default",
                             "--port", "0", "--quiet"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env=dict(os.environ, XDG_CACHE_HOME=str(tmp_path)))
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving the demo at http://127.0.0.1:"), (line, proc.stderr.read()
                                                                            if proc.poll() is not None else "")
        with urllib.request.urlopen(line.split()[4] + "export/tags.json", timeout=30) as r:
            assert len(json.load(r)["tags"]) >= 10
    finally:
        proc.terminate()
        proc.wait(timeout=30)
