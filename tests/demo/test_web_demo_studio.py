"""The demo page as a studio, in headless Chromium: live redraws, slider descriptions, links and face
files, 4x saves, the 10x10 grid, kept faces and morphs, backends, the phone layout.

Every face the page draws is checked against Chainer's output for the same z where it matters.
"""
import functools
import http.server
import io
import json
import os
import threading

import numpy
import pytest
from test_web_demo import _open, _pixels, browser  # noqa: F401  (a shared fixture)
from PIL import Image

from chainer_dcgan import export, zspace
from chainer_dcgan.demo.server import CHROMIUM_ARGS, ORT_DIST, DemoServer, find_chromium, find_web_dir
from chainer_dcgan.models import sample_z
from chainer_dcgan.utils.images import to_image
from chainer_dcgan.zspace.tagging import TagVector

N_TAGS = 4
GRID = 10


def _studio_tags():
    """Four tag vectors; the first two carry a measured effect (as tools/tag_vectors.py writes it)."""
    rs = numpy.random.RandomState(7)
    out = []
    for i in range(N_TAGS):
        v = rs.uniform(-1, 1, 100)
        extra = {"effect": {"base": 0.1 * (i + 1), "shifted": {"0.5": 0.5 + 0.1 * i, "1": 0.9}}} if i < 2 else {}
        out.append(TagVector("tag_{}".format(i), numpy.round(v / numpy.abs(v).max(), 6), 10 * (i + 1), extra))
    return out


def _vectors():
    return numpy.stack([tv.v for tv in _studio_tags()])


@pytest.fixture(scope="module")
def studio_export(demo_generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("studio_export")
    export.export_demo(demo_generator, str(out), tags=_studio_tags(), check_n=1,
                       first_z=sample_z(1, random_state=31)[0])
    return out


@pytest.fixture(scope="module")
def studio_server(studio_export):
    with DemoServer(str(studio_export)) as srv:
        yield srv


@pytest.fixture(scope="module")
def studio(browser, studio_server):  # noqa: F811
    page = _open(browser, studio_server.url)
    yield page
    page.close()


def _face(page, z0, strength, sliders):
    """Set z0, noise strength and sliders through the hook and draw (face mode)."""
    page.evaluate("a => { dcganDemo.setMode('face'); dcganDemo.setZ0(a[0]); dcganDemo.setStrength(a[1]); "
                  "dcganDemo.setSliders(a[2]); return dcganDemo.draw(); }", [list(map(float, z0)), strength, sliders])


def _chainer_pixels(gen, z):
    return to_image(export.chainer_output(gen, numpy.asarray(z, numpy.float32)[None])[0]).astype(int)


def _close_to(got, want):
    diff = numpy.abs(got.astype(int) - want.astype(int))
    return numpy.mean(diff <= 1) >= 0.99 and numpy.mean(diff == 0) >= 0.95


def _z0(page):
    return numpy.array(page.evaluate("dcganDemo.getZ0()"), numpy.float32)


# 1. Live

def test_a_slider_moved_by_the_keyboard_redraws_without_a_button(studio, demo_generator):
    z0 = sample_z(1, random_state=40)[0]
    _face(studio, z0, 1.0, [0.0] * N_TAGS)
    before = studio.evaluate("dcganDemo.drawn")
    studio.focus("#tag-1")
    for _ in range(5):
        studio.keyboard.press("ArrowRight")  # a real (trusted) input event each, as a user's
    studio.wait_for_function("() => Number(document.getElementById('tag-1').value) === 0.05")
    studio.evaluate("dcganDemo.idle()")
    assert studio.evaluate("dcganDemo.drawn") > before
    assert studio.text_content("#tag-1 + output") == "0.05"
    z = zspace.compose(z0, 1.0, [0, 0.05, 0, 0], _vectors())
    numpy.testing.assert_array_equal(numpy.array(studio.evaluate("dcganDemo.getZ()"), numpy.float32), z)
    assert _close_to(_pixels(studio), _chainer_pixels(demo_generator, z))


def test_noise_strength_redraws_live(studio, demo_generator):
    z0 = sample_z(1, random_state=41)[0]
    _face(studio, z0, 1.0, [0.0] * N_TAGS)
    before = studio.evaluate("dcganDemo.drawn")
    studio.locator("#strength").fill("0.4")
    studio.wait_for_function("n => dcganDemo.drawn > n", arg=before)
    studio.evaluate("dcganDemo.idle()")
    z = zspace.compose(z0, 0.4, [0.0] * N_TAGS, _vectors())
    assert _close_to(_pixels(studio), _chainer_pixels(demo_generator, z))


def test_a_burst_of_moves_is_coalesced_into_one_draw_of_the_last_values(studio, demo_generator):
    z0 = sample_z(1, random_state=42)[0]
    _face(studio, z0, 1.0, [0.0] * N_TAGS)
    drawn, requested = studio.evaluate("[dcganDemo.drawn, dcganDemo.requested]")
    # 30 input events in one task, as a fast drag delivers them between two frames.
    studio.evaluate("""() => { const el = document.getElementById('tag-0');
        for (let i = 1; i <= 30; i++) { el.value = String(i / 30); el.dispatchEvent(new Event('input')); } }""")
    studio.evaluate("dcganDemo.idle()")
    assert studio.evaluate("dcganDemo.requested") == requested + 30
    assert studio.evaluate("dcganDemo.drawn") == drawn + 1
    z = zspace.compose(z0, 1.0, [1.0, 0, 0, 0], _vectors())
    assert _close_to(_pixels(studio), _chainer_pixels(demo_generator, z))


def test_moves_while_a_face_is_drawn_wait_as_one_draw(studio):
    _face(studio, sample_z(1, random_state=43)[0], 1.0, [0.0] * N_TAGS)
    drawn, requested = studio.evaluate("[dcganDemo.drawn, dcganDemo.requested]")
    # A run holds the queue (as a slow draw would); eleven moves arrive, one task each, while it does.
    studio.evaluate("""async () => { const el = document.getElementById('tag-2');
        const move = (v) => { el.value = String(v); el.dispatchEvent(new Event('input')); };
        const release = dcganDemo.hold();
        move(0.1);
        for (let i = 2; i <= 11; i++) { await new Promise((r) => setTimeout(r, 0)); move(i / 20); }
        release(); }""")
    studio.evaluate("dcganDemo.idle()")
    assert studio.evaluate("dcganDemo.requested") - requested == 11
    assert studio.evaluate("dcganDemo.drawn") - drawn == 1
    assert studio.evaluate("dcganDemo.sliderValues()")[2] == 0.55
    assert studio.evaluate("dcganDemo.getZ()") == studio.evaluate(
        "dcganDemo.compose(dcganDemo.getZ0(), 1, dcganDemo.sliderValues(), %s)" % json.dumps(_vectors().tolist()))
    # Without the hold, a move after the draw has finished draws again.
    studio.evaluate("""() => { const el = document.getElementById('tag-2');
        el.value = '0.6'; el.dispatchEvent(new Event('input')); }""")
    studio.evaluate("dcganDemo.idle()")
    assert studio.evaluate("dcganDemo.drawn") - drawn == 2


def test_each_slider_says_what_it_does(studio):
    titles = [studio.get_attribute("#tag-{} >> xpath=..".format(i), "title") for i in range(N_TAGS)]
    # With a measured effect: the classifier's probabilities at 0, +0.5 and +1, in percent.
    assert "tag_0" in titles[0] and "10% of faces at 0" in titles[0] and "50% at +0.5" in titles[0] \
        and "90% at +1" in titles[0]
    assert "20% of faces at 0" in titles[1] and "60% at +0.5" in titles[1]
    # Without one: the tag, the face count and that it was not measured.
    assert "tag_2" in titles[2] and "30 of the labelled faces had it" in titles[2] and "not measured" in titles[2]
    assert "Measured" not in titles[3]
    help_text = studio.text_content("#strength-help")
    assert "noise strength" in help_text.lower() and "z0" in help_text
    assert studio.is_visible("#strength-help") and studio.is_visible("#tags-help")


# 3. Shareable

def _wait_for_hash(page):
    page.wait_for_function("location.hash.slice(1) === dcganDemo.hash()")
    return page.url


def test_the_link_reproduces_the_face_exactly(browser, studio, studio_server):  # noqa: F811
    z0 = sample_z(1, random_state=44)[0]
    sliders = [0.25, -0.5, 0.0, 0.93]
    _face(studio, z0, 0.83, sliders)
    url = _wait_for_hash(studio)
    assert "#z=" in url and "n=0.83" in url
    other = _open(browser, url)
    try:
        numpy.testing.assert_array_equal(_z0(other), z0)
        assert other.evaluate("dcganDemo.sliderValues()") == sliders
        assert other.evaluate("Number(document.getElementById('strength').value)") == 0.83
        numpy.testing.assert_array_equal(_pixels(other), _pixels(studio))
        assert not other.errors
    finally:
        other.close()


def test_a_bad_link_opens_the_first_face_and_says_so(browser, studio_server, studio_export):  # noqa: F811
    first = numpy.array(json.loads((studio_export / "demo.json").read_text())["first_z"], numpy.float32)
    for bad in ("#z=AAAA", "#z=" + "A" * 536 + "&n=7", "#z=!!", "#n=0.5", "#z=" + "A" * 534 + "&t=nope:0.5"):
        page = _open(browser, studio_server.url + bad)
        try:
            assert page.evaluate("document.body.dataset.state") == "ready", bad
            assert "link's face was not read" in page.text_content("#status"), bad
            numpy.testing.assert_array_equal(_z0(page), first)
        finally:
            page.close()


def _download(page, selector):
    with page.expect_download() as info:
        page.click(selector)
    d = info.value
    return d.suggested_filename, open(d.path(), "rb").read()


def test_save_face_and_open_it_again(studio, demo_generator, tmp_path):
    z0 = sample_z(1, random_state=45)[0]
    _face(studio, z0, 0.9, [0.5, 0.0, -0.25, 0.0])
    name, data = _download(studio, "#export")
    doc = json.loads(data)
    assert name == "face.json" and len(data) < 4096
    assert doc["format"] == "chainer-dcgan-face" and doc["version"] == 1 and doc["strength"] == 0.9
    assert doc["sliders"] == {"tag_0": 0.5, "tag_2": -0.25}
    numpy.testing.assert_array_equal(numpy.array(doc["z0"], numpy.float32), z0)
    # Change the face, then open the file: the saved face comes back.
    _face(studio, sample_z(1, random_state=46)[0], 1.0, [0.0] * N_TAGS)
    path = tmp_path / "mine.json"
    doc["sliders"]["tag_3"] = -1
    path.write_text(json.dumps(doc))
    before = studio.evaluate("dcganDemo.drawn")
    studio.set_input_files("#import-file", str(path))
    studio.wait_for_function("n => dcganDemo.drawn > n", arg=before)
    studio.evaluate("dcganDemo.idle()")
    numpy.testing.assert_array_equal(_z0(studio), z0)
    assert studio.evaluate("dcganDemo.sliderValues()") == [0.5, 0.0, -0.25, -1.0]
    assert "opened mine.json" in studio.text_content("#status")
    z = zspace.compose(z0, 0.9, [0.5, 0.0, -0.25, -1.0], _vectors())
    assert _close_to(_pixels(studio), _chainer_pixels(demo_generator, z))


@pytest.mark.parametrize("text, message", [
    ("{not json", "not JSON"),
    ('{"format": "something else", "version": 1, "z0": []}', "not a face file"),
    ('{"format": "chainer-dcgan-face", "version": 2, "z0": []}', "version 2"),
    ('{"format": "chainer-dcgan-face", "version": 1, "z0": [0.5]}', "z0: 1 numbers"),
    ('{"format": "chainer-dcgan-face", "version": 1, "z0": [%s]}' % ",".join(["2"] * 100), "[-1, 1]"),
    ('{"format": "chainer-dcgan-face", "version": 1, "z0": [%s], "sliders": {"hair": 1}}' % ",".join(["0"] * 100),
     'no tag "hair"'),
    ('{"format": "chainer-dcgan-face", "version": 1, "z0": [%s], "strength": "x"}' % ",".join(["0"] * 100),
     "strength"),
    ('{"format": "chainer-dcgan-face", "version": 1, "z0": [%s], "pad": "%s"}' % (",".join(["0"] * 100),
                                                                                 "x" * 70000), "larger than"),
])
def test_a_bad_face_file_is_refused_and_the_face_kept(studio, tmp_path, text, message):
    _face(studio, sample_z(1, random_state=47)[0], 1.0, [0.0] * N_TAGS)
    z0, pixels = _z0(studio), _pixels(studio)
    path = tmp_path / "bad.json"
    path.write_text(text)
    studio.set_input_files("#import-file", str(path))
    studio.wait_for_function("document.body.dataset.state === 'error'")
    status = studio.text_content("#status")
    assert status.startswith("error: bad.json: ") and message in status, status
    numpy.testing.assert_array_equal(_z0(studio), z0)
    numpy.testing.assert_array_equal(_pixels(studio), pixels)
    studio.evaluate("dcganDemo.draw()")  # the page goes on
    assert studio.evaluate("document.body.dataset.state") == "ready"


def test_save_image_at_4x_sharp_and_smooth(studio):
    _face(studio, sample_z(1, random_state=48)[0], 1.0, [0.0] * N_TAGS)
    face = _pixels(studio)
    studio.select_option("#save-size", "4-nearest")
    name, data = _download(studio, "#save")
    sharp = numpy.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert name == "face-4x-sharp.png" and sharp.shape == (384, 384, 3)
    numpy.testing.assert_array_equal(sharp, face.repeat(4, 0).repeat(4, 1))
    studio.select_option("#save-size", "4-smooth")
    name, data = _download(studio, "#save")
    smooth = numpy.asarray(Image.open(io.BytesIO(data)).convert("RGB")).astype(int)
    assert name == "face-4x-smooth.png" and smooth.shape == (384, 384, 3)
    assert (smooth != sharp).any()
    # The same picture (strongly correlated with the sharp one), with softer steps between
    # neighbouring pixels (less squared difference than the sharp one's block edges).
    assert numpy.corrcoef(smooth.ravel(), sharp.ravel())[0, 1] > 0.7

    def steps(img):
        return (numpy.diff(img, axis=0) ** 2).sum() + (numpy.diff(img, axis=1) ** 2).sum()

    assert steps(smooth) < 0.8 * steps(sharp)
    studio.select_option("#save-size", "1")
    name, data = _download(studio, "#save")
    assert name == "face.png"
    numpy.testing.assert_array_equal(numpy.asarray(Image.open(io.BytesIO(data)).convert("RGB")), face)


# 4. Grid

def test_the_grid_draws_100_faces_that_match_chainer_and_a_click_picks_one(studio, demo_generator):
    studio.evaluate("dcganDemo.setMode('face')")
    grid_before = studio.evaluate("dcganDemo.gridDrawn")
    studio.click("#grid-mode")
    studio.wait_for_function("n => dcganDemo.gridDrawn > n", arg=grid_before)
    assert studio.evaluate("dcganDemo.mode") == "grid" and studio.is_visible("#grid") and studio.is_hidden("#face")
    z0s = sample_z(GRID * GRID, random_state=49)
    sliders = [0.3, 0.0, -0.6, 0.1]
    studio.evaluate("a => { dcganDemo.setGridZ0(a[0]); dcganDemo.setStrength(a[1]); dcganDemo.setSliders(a[2]); "
                    "return dcganDemo.draw(); }", [z0s.ravel().tolist(), 0.95, sliders])
    zs = numpy.stack([zspace.compose(z, 0.95, sliders, _vectors()) for z in z0s])
    want = numpy.stack([to_image(x) for x in export.chainer_output(demo_generator, zs)])  # (100, 96, 96, 3)
    rgba = numpy.array(studio.evaluate("dcganDemo.gridPixels()"), numpy.uint8).reshape(960, 960, 4)
    got = rgba[..., :3].reshape(GRID, 96, GRID, 96, 3).transpose(0, 2, 1, 3, 4).reshape(100, 96, 96, 3)
    assert (rgba[..., 3] == 255).all()
    assert _close_to(got, want)
    assert "ms per 100-face grid" in studio.text_content("#status")
    # A slider move redraws the whole grid.
    before = studio.evaluate("dcganDemo.gridDrawn")
    studio.locator("#tag-1").fill("0.5")
    studio.wait_for_function("n => dcganDemo.gridDrawn > n", arg=before)
    studio.evaluate("dcganDemo.idle()")
    # Clicking face (row 3, column 7) makes it the current face.
    box = studio.locator("#grid").bounding_box()
    studio.mouse.click(box["x"] + box["width"] * 7.5 / GRID, box["y"] + box["height"] * 3.5 / GRID)
    studio.wait_for_function("dcganDemo.mode === 'face'")
    studio.evaluate("dcganDemo.idle()")
    numpy.testing.assert_array_equal(_z0(studio), z0s[37])
    z = zspace.compose(z0s[37], 0.95, [0.3, 0.5, -0.6, 0.1], _vectors())
    assert _close_to(_pixels(studio), _chainer_pixels(demo_generator, z))
    assert studio.is_visible("#face") and studio.is_hidden("#grid")


# 6. Favourites, morph, perturb

def test_keep_two_faces_morph_between_them_and_perturb(studio):
    za, zb = sample_z(2, random_state=50)
    _face(studio, za, 1.0, [0.0] * N_TAGS)
    kept = studio.evaluate("dcganDemo.favourites")
    studio.click("#keep")
    _face(studio, zb, 1.0, [0.0] * N_TAGS)
    studio.click("#keep")
    assert studio.evaluate("dcganDemo.favourites") == kept + 2
    thumbs = studio.locator("#favourites canvas")
    assert thumbs.count() == kept + 2
    # Clicking the first thumbnail makes it current again.
    studio.locator("#favourites button").nth(kept).click()
    studio.wait_for_function("a => dcganDemo.getZ0()[0] === a", arg=float(za[0]))
    # Morph: through the kept faces and back to the first, one frame a draw.
    drawn = studio.evaluate("dcganDemo.drawn")
    studio.click("#morph")
    studio.wait_for_function("dcganDemo.morphing")
    studio.wait_for_function("!dcganDemo.morphing", timeout=120000)
    studio.evaluate("dcganDemo.idle()")
    assert studio.evaluate("dcganDemo.drawn") - drawn >= 24 * (kept + 2)  # 24 frames from each kept face
    if kept == 0:  # it ends on the first kept face, which becomes current
        numpy.testing.assert_array_equal(_z0(studio), za)
    # Perturb: a neighbour of the face, every number within 0.2 and inside [-1, 1].
    z0 = _z0(studio)
    studio.click("#perturb")
    studio.wait_for_function("a => dcganDemo.getZ0()[0] !== a || dcganDemo.getZ0()[1] !== a", arg=float(z0[0]))
    z1 = _z0(studio)
    assert 0 < numpy.abs(z1 - z0).max() <= 0.2 + 1e-6 and numpy.abs(z1).max() <= 1


def test_morph_with_fewer_than_two_kept_faces_says_what_to_do(browser, studio_server):  # noqa: F811
    page = _open(browser, studio_server.url)
    try:
        page.click("#morph")
        page.wait_for_function("document.getElementById('status').textContent.includes('keep two faces')")
        assert not page.evaluate("dcganDemo.morphing") and not page.errors
    finally:
        page.close()


# 5. Backends

def test_the_isolated_page_uses_threaded_webassembly(studio):
    assert studio.evaluate("crossOriginIsolated") is True
    cores = studio.evaluate("navigator.hardwareConcurrency")
    threads = studio.evaluate("dcganDemo.threads")
    assert threads == min(4, cores)
    backend = studio.evaluate("dcganDemo.backend")
    # This headless Chromium has no WebGPU adapter (--disable-gpu): WebAssembly, with every core.
    assert backend == "WebAssembly, {} thread{}".format(threads, "" if threads == 1 else "s")
    assert backend in studio.text_content("#status")
    if cores >= 2:
        assert threads >= 2


def test_asking_for_webgpu_where_there_is_none_falls_back_and_says_why(browser, studio_server):  # noqa: F811
    page = _open(browser, studio_server.url + "?backend=webgpu")
    try:
        assert page.evaluate("dcganDemo.backend").startswith("WebAssembly")
        assert "WebGPU" in page.evaluate("dcganDemo.lost")
        assert page.evaluate("document.body.dataset.state") == "ready"
    finally:
        page.close()


@pytest.fixture(scope="module")
def webgpu_browser(browser):  # noqa: F811  (skips with it where there is no Chromium)
    """Headless Chromium with WebGPU on: here its one adapter is SwiftShader's, on the CPU."""
    args = [a for a in CHROMIUM_ARGS if a != "--disable-gpu"] + ["--enable-unsafe-webgpu"]
    b = browser.browser_type.launch(executable_path=find_chromium(), args=args)
    yield b
    b.close()


def test_a_software_webgpu_adapter_is_skipped_unless_asked_for(webgpu_browser, studio_server, demo_generator):
    page = _open(webgpu_browser, studio_server.url)
    try:
        adapter = page.evaluate("navigator.gpu ? navigator.gpu.requestAdapter().then((a) => a && "
                                "[a.info.vendor, a.info.architecture, a.info.isFallbackAdapter]) : null")
        if adapter is None:
            pytest.skip("this Chromium gives no WebGPU adapter even with --enable-unsafe-webgpu")
        assert page.evaluate("dcganDemo.backend").startswith("WebAssembly")
        assert "software" in page.evaluate("dcganDemo.lost") and "software" in page.text_content("#status")
    finally:
        page.close()
    # Asked for, it runs on WebGPU (slowly: about 2 s a face on SwiftShader) and draws Chainer's face.
    page = _open(webgpu_browser, studio_server.url + "?backend=webgpu")
    try:
        assert page.evaluate("dcganDemo.backend") == "WebGPU"
        assert page.text_content("#status").startswith("generator.onnx on WebGPU")
        z0 = _z0(page)
        assert _close_to(_pixels(page), _chainer_pixels(demo_generator, zspace.compose(z0, 1.0)))
        assert not page.errors
    finally:
        page.close()


@pytest.mark.parametrize("query, message", [("?threads=abc", "threads=abc"), ("?threads=0", "threads=0"),
                                            ("?backend=cuda", "backend=cuda")])
def test_a_bad_backend_parameter_is_named_in_the_status(browser, studio_server, query, message):  # noqa: F811
    page = browser.new_page()
    try:
        page.goto(studio_server.url + query)
        page.wait_for_function("document.body.dataset.state === 'error'")
        status = page.text_content("#status")
        assert status.startswith("error: ") and message in status, status
    finally:
        page.close()


class _PlainStatic(http.server.SimpleHTTPRequestHandler):
    """Any static file server: no COOP/COEP headers."""
    extensions_map = dict(http.server.SimpleHTTPRequestHandler.extensions_map,
                          **{".mjs": "text/javascript", ".js": "text/javascript", ".wasm": "application/wasm"})

    def log_message(self, *args):
        pass


def test_a_plain_static_server_gives_one_thread_and_the_page_says_why(browser, studio_export, tmp_path,  # noqa: F811
                                                                      demo_generator):
    web = find_web_dir()
    site = tmp_path / "site"
    os.makedirs(site / os.path.dirname(ORT_DIST))
    for name in os.listdir(web):
        if name.endswith((".html", ".js", ".css")):
            os.symlink(os.path.join(web, name), site / name)
    os.symlink(os.path.join(web, ORT_DIST), site / ORT_DIST)
    os.symlink(studio_export, site / "export")
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(_PlainStatic, directory=str(site)))
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        page = _open(browser, "http://127.0.0.1:{}/".format(server.server_address[1]))
        try:
            assert page.evaluate("crossOriginIsolated") is False
            assert page.evaluate("dcganDemo.backend") == "WebAssembly, 1 thread"
            status = page.text_content("#status")
            assert "not cross-origin isolated" in status and "Cross-Origin-Embedder-Policy" in status
            z0 = _z0(page)
            assert _close_to(_pixels(page), _chainer_pixels(demo_generator, zspace.compose(z0, 1.0)))
            assert not page.errors
        finally:
            page.close()
    finally:
        server.shutdown()
        server.server_close()


# 2. Narrow layout

def _outside(page, width):
    """Visible canvases, buttons and selects whose box is not inside [0, width]."""
    return page.evaluate("""w => Array.from(document.querySelectorAll('canvas, button, select'))
        .filter((el) => el.offsetParent !== null && !el.closest('#favourites'))
        .map((el) => [el.id || el.textContent, el.getBoundingClientRect()])
        .filter(([, r]) => r.left < 0 || r.right > w).map(([id]) => id)""", width)


@pytest.mark.parametrize("width", [390, 1280])
def test_every_button_and_the_canvas_fit_the_viewport(browser, studio_server, width):  # noqa: F811
    page = browser.new_page(viewport={"width": width, "height": 844})
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    try:
        page.goto(studio_server.url)
        page.evaluate("dcganDemo.ready")
        assert page.evaluate("document.documentElement.scrollWidth") <= width
        assert _outside(page, width) == []
        visible = page.evaluate("Array.from(document.querySelectorAll('.buttons button, .buttons select'))"
                                ".filter((el) => el.offsetParent !== null).length")
        assert visible == 10
        box = page.locator("#face").bounding_box()
        assert box["width"] >= min(300, width - 40) and box["x"] >= 0 and box["x"] + box["width"] <= width
        if width == 390:
            # The sliders scroll in a box of their own below the face.
            assert page.evaluate("getComputedStyle(document.getElementById('sliders')).overflowY") == "auto"
            assert page.locator("#sliders").bounding_box()["y"] > box["y"] + box["height"]
        assert not page.errors
    finally:
        page.close()
