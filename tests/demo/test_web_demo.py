"""The browser demo: chainer_dcgan.demo.server's server, tools/serve_demo.py, and web/ in headless Chromium.

The page runs in Debian's Chromium driven by Playwright (its own browser download is not used).
Tests that need the browser skip only where Chromium is not installed.
"""
import importlib.util
import io
import os
import subprocess
import sys
import urllib.error
import urllib.request

import numpy
import pytest
from conftest import REPO
from PIL import Image

from chainer_dcgan import export, zspace
from chainer_dcgan.demo.server import DemoServer, WebDemoError, find_chromium, launch_chromium
from chainer_dcgan.models import sample_z
from chainer_dcgan.utils.images import to_image
from chainer_dcgan.zspace.tagging import TagVector

N_TAGS = 4


def _tags(n=N_TAGS, seed=0):
    rs = numpy.random.RandomState(seed)
    out = []
    for i in range(n):
        v = rs.uniform(-1, 1, 100)
        out.append(TagVector("tag {}".format(i), numpy.round(v / numpy.abs(v).max(), 6), 5 * (i + 1)))
    return out


def _vectors():
    return numpy.stack([tv.v for tv in _tags()])


@pytest.fixture(scope="module")
def export_dir(demo_generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("web_export")
    export.export_demo(demo_generator, str(out), tags=_tags(), check_n=1)
    return out


@pytest.fixture(scope="module")
def server(export_dir):
    with DemoServer(str(export_dir)) as srv:
        yield srv


@pytest.fixture(scope="module")
def browser():
    if find_chromium() is None:
        pytest.skip("Chromium is not installed and could not be installed here "
                    "(.ci/install-system-deps runs apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as p:
        b = launch_chromium(p)
        yield b
        b.close()


def _open(browser, url):
    page = browser.new_page()
    page.errors = []
    page.on("pageerror", lambda e: page.errors.append(str(e)))
    page.on("console", lambda m: m.type == "error" and page.errors.append(m.text))
    page.goto(url)
    page.evaluate("window.dcganDemo.ready")
    return page


@pytest.fixture(scope="module")
def page(browser, server):
    page = _open(browser, server.url)
    yield page
    page.close()


def _pixels(page):
    rgba = numpy.array(page.evaluate("dcganDemo.pixels()"), dtype=numpy.uint8).reshape(96, 96, 4)
    assert (rgba[..., 3] == 255).all()
    return rgba[..., :3]


def _click_and_wait(page, selector):
    before = page.evaluate("dcganDemo.drawn")
    page.click(selector)
    page.wait_for_function("n => dcganDemo.drawn > n", arg=before)


def _fill_and_wait(page, selector, value):
    """Move a slider as a user does; the page redraws by itself (no button)."""
    before = page.evaluate("dcganDemo.drawn")
    page.locator(selector).fill(value)
    page.wait_for_function("n => dcganDemo.drawn > n", arg=before)
    page.evaluate("dcganDemo.idle()")


def test_page_loads_and_draws_a_face(page):
    assert page.evaluate("document.body.dataset.state") == "ready"
    assert not page.errors
    assert page.evaluate("dcganDemo.tags") == [tv.name for tv in _tags()]
    assert page.locator("#sliders input[type=range]").count() == N_TAGS
    assert "ms per face" in page.text_content("#status")
    assert _pixels(page).std() > 10  # a picture, not a blank canvas
    assert page.evaluate("dcganDemo.loadMs") > 0


def test_js_formula_equals_python_compose(page):
    rs = numpy.random.RandomState(5)
    vectors = _vectors()
    for strength, scale in ((1.0, 1.0), (0.37, 0.5), (0.0, 0.25)):
        z0 = sample_z(1, random_state=rs)[0]
        sliders = numpy.round(rs.uniform(-1, 1, N_TAGS) * scale, 2)
        got = page.evaluate("a => dcganDemo.compose(...a)",
                            [z0.tolist(), strength, sliders.tolist(), vectors.tolist()])
        want = zspace.compose(z0, strength, sliders, vectors)
        numpy.testing.assert_array_equal(numpy.array(got, dtype=numpy.float32), want)


def test_canvas_equals_chainer_for_a_fixed_z0(page, demo_generator):
    z0 = sample_z(1, random_state=11)[0]
    sliders = [0.5, -0.3, 0.0, 1.0]
    page.evaluate("a => { dcganDemo.setZ0(a[0]); dcganDemo.setStrength(a[1]); dcganDemo.setSliders(a[2]); }",
                  [z0.tolist(), 0.9, sliders])
    assert page.evaluate("dcganDemo.sliderValues()") == sliders
    page.evaluate("dcganDemo.draw()")
    numpy.testing.assert_array_equal(numpy.array(page.evaluate("dcganDemo.getZ0()"), numpy.float32), z0)
    z = zspace.compose(z0, 0.9, sliders, _vectors())
    numpy.testing.assert_array_equal(numpy.array(page.evaluate("dcganDemo.getZ()"), numpy.float32), z)
    reference = export.chainer_output(demo_generator, z[None])[0]
    diff = numpy.abs(_pixels(page).astype(int) - to_image(reference).astype(int))
    assert numpy.mean(diff <= 1) >= 0.99, "only {:.2%} of pixels within 1/255".format(numpy.mean(diff <= 1))
    assert numpy.mean(diff == 0) >= 0.95
    # The page's own parts: onnxruntime-web's output is Chainer's, and its pixel mapping is to_image's.
    raw = numpy.array(page.evaluate("z => dcganDemo.generate(z)", z.tolist()), numpy.float32).reshape(3, 96, 96)
    assert numpy.abs(raw - reference).max() <= export.TOLERANCE
    numpy.testing.assert_array_equal(_pixels(page), to_image(raw))


def test_moving_a_slider_changes_the_image(page):
    page.evaluate("dcganDemo.reset()")
    before, z_before = _pixels(page), page.evaluate("dcganDemo.getZ()")
    _fill_and_wait(page, "#tag-2", "0.8")
    assert page.text_content("#tag-2 + output") == "0.80"
    assert page.evaluate("dcganDemo.sliderValues()")[2] == 0.8
    assert page.evaluate("dcganDemo.getZ()") != z_before
    assert numpy.abs(_pixels(page).astype(int) - before).mean() > 1


def test_shuffle_changes_z0_and_the_image(page):
    z0, before = page.evaluate("dcganDemo.getZ0()"), _pixels(page)
    _click_and_wait(page, "#shuffle")
    z0_new = numpy.array(page.evaluate("dcganDemo.getZ0()"))
    assert (z0_new != numpy.array(z0)).all() and numpy.abs(z0_new).max() <= 1
    assert numpy.abs(_pixels(page).astype(int) - before).mean() > 1


def test_reset_puts_sliders_to_zero_keeping_z0(page):
    page.evaluate("dcganDemo.setSliders([1, 1, -1, 0.5]); dcganDemo.setStrength(0.7)")
    _click_and_wait(page, "#reset")
    assert page.evaluate("dcganDemo.sliderValues()") == [0.0] * N_TAGS
    z0 = numpy.array(page.evaluate("dcganDemo.getZ0()"), numpy.float32)
    numpy.testing.assert_array_equal(numpy.array(page.evaluate("dcganDemo.getZ()"), numpy.float32),
                                     zspace.compose(z0, 0.7))


def test_save_image_downloads_the_canvas(page, tmp_path):
    with page.expect_download() as info:
        page.click("#save")
    download = info.value
    assert download.suggested_filename == "face.png"
    path = tmp_path / "face.png"
    download.save_as(str(path))
    img = numpy.asarray(Image.open(io.BytesIO(path.read_bytes())).convert("RGB"))
    numpy.testing.assert_array_equal(img, _pixels(page))


def test_float16_export_without_tags(browser, demo_generator, tmp_path):
    export.export_demo(demo_generator, str(tmp_path), float16=True, check_n=1)
    with DemoServer(str(tmp_path)) as srv:
        page = _open(browser, srv.url + "?model=f16&threads=1")
        try:
            assert page.evaluate("dcganDemo.model") == export.MODEL_F16 and page.evaluate("dcganDemo.threads") == 1
            assert page.locator("#sliders input").count() == 0 and page.is_visible("#no-tags")
            z0 = sample_z(1, random_state=3)[0]
            page.evaluate("z => { dcganDemo.setZ0(z); return dcganDemo.draw(); }", z0.tolist())
            want = to_image(export.chainer_output(demo_generator, z0[None])[0]).astype(int)
            assert numpy.abs(_pixels(page).astype(int) - want).mean() < 2  # float16 weights: close
            assert not page.errors
        finally:
            page.close()


def test_the_page_opens_on_the_exports_first_face_and_shuffle_leaves_it(browser, demo_generator, tmp_path):
    first = sample_z(1, random_state=21)[0]
    manifest = export.export_demo(demo_generator, str(tmp_path), check_n=1, first_z=first)
    numpy.testing.assert_array_equal(numpy.array(manifest["first_z"], numpy.float32), first)
    with DemoServer(str(tmp_path)) as srv:
        pages = [_open(browser, srv.url) for _ in range(2)]
        try:
            for page in pages:  # every visit opens on the same face: that z, drawn
                numpy.testing.assert_array_equal(numpy.array(page.evaluate("dcganDemo.getZ0()"), numpy.float32),
                                                 first)
                want = to_image(export.chainer_output(demo_generator, first[None])[0]).astype(int)
                assert numpy.mean(numpy.abs(_pixels(page).astype(int) - want) <= 1) >= 0.99
            _click_and_wait(pages[0], "#shuffle")
            assert not numpy.array_equal(numpy.array(pages[0].evaluate("dcganDemo.getZ0()"), numpy.float32), first)
            assert not pages[0].errors and not pages[1].errors
        finally:
            for page in pages:
                page.close()


@pytest.mark.parametrize("bad", [[0.5] * 99, [2.0] + [0.0] * 99, [float("nan")] + [0.0] * 99])
def test_a_first_face_that_is_not_a_z_is_refused(demo_generator, tmp_path, bad):
    with pytest.raises(export.ExportError, match="first face"):
        export.export_demo(demo_generator, str(tmp_path), check_n=1, first_z=bad)
    assert not os.listdir(tmp_path)  # nothing written


# The server alone, without a browser.

def _get(url):
    with urllib.request.urlopen(url, timeout=30) as r:
        return r.status, r.headers, r.read()


def test_server_sends_isolation_headers_and_types(server):
    status, headers, body = _get(server.url)
    assert status == 200 and b"shuffle!" in body
    assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
    assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    _, headers, _ = _get(server.url + "node_modules/onnxruntime-web/dist/ort-wasm-simd-threaded.wasm")
    assert headers["Content-Type"] == "application/wasm"
    _, headers, _ = _get(server.url + "demo.js")
    assert headers["Content-Type"].startswith("text/javascript")
    status, _, body = _get(server.url + "export/demo.json")
    assert status == 200 and b"generator.onnx" in body


def test_server_stays_inside_its_folders(server):
    for path in ("../setup.py", "%2e%2e/setup.py", "export/../../setup.py", "export/%2e%2e/demo.json"):
        try:
            status, _, body = _get(server.url + path)
        except urllib.error.HTTPError as e:
            status, body = e.code, b""
        assert status == 404 or b"chainer-dcgan" not in body, path


def _status_with_host(server, host, path="/demo.js"):
    import http.client

    address, port = server._server.server_address[:2]
    conn = http.client.HTTPConnection(address, port, timeout=30)
    try:
        conn.putrequest("GET", path, skip_host=True)
        if host is not None:
            conn.putheader("Host", host.format(port=port))
        conn.endheaders()
        response = conn.getresponse()
        return response.status, response.read()
    finally:
        conn.close()


def test_server_answers_only_the_names_it_serves_on(server):
    """DNS rebinding: a hostile site re-points its own name at 127.0.0.1; the browser then sends that
    name in Host, and the server must not answer it."""
    for host in ("127.0.0.1:{port}", "localhost:{port}", "LOCALHOST:{port}", None):
        status, body = _status_with_host(server, host)
        assert status == 200 and b"dcganDemo" in body, host
    for host in ("evil.example:{port}", "127.0.0.1.evil.example:{port}", "localhost", "127.0.0.1:1",
                 "10.0.0.1:{port}", "", "[not-an-ip]:{port}", "a b:{port}"):
        status, body = _status_with_host(server, host)
        assert status == 421 and b"dcganDemo" not in body, host
    assert _status_with_host(server, "evil.example:{port}", "/export/demo.json")[0] == 421


def test_server_refuses_a_folder_without_an_export(tmp_path):
    with pytest.raises(WebDemoError, match="demo.json"):
        DemoServer(str(tmp_path))
    with pytest.raises(WebDemoError, match="npm ci"):
        os.makedirs(tmp_path / "web")
        (tmp_path / "web" / "index.html").write_text("<html></html>")
        DemoServer(str(tmp_path), web_dir=str(tmp_path / "web"))


def test_serve_demo_cli(export_dir):
    proc = subprocess.Popen([sys.executable, os.path.join(REPO, "tools", "serve_demo.py"), "--export",
                             str(export_dir), "--port", "0", "--quiet"], stdout=subprocess.PIPE, text=True)
    try:
        line = proc.stdout.readline()
        assert line.startswith("serving the demo at http://127.0.0.1:"), line
        url = line.split()[4]
        status, headers, body = _get(url)
        assert b"shuffle!" in body
        # Cross-origin isolation, so the page gets SharedArrayBuffer and WebAssembly threads.
        assert headers["Cross-Origin-Opener-Policy"] == "same-origin"
        assert headers["Cross-Origin-Embedder-Policy"] == "require-corp"
    finally:
        proc.terminate()
        proc.wait(timeout=30)


def test_serve_demo_cli_refuses_a_bad_export(export_dir, capsys):
    spec = importlib.util.spec_from_file_location("serve_demo", os.path.join(REPO, "tools", "serve_demo.py"))
    tool = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(tool)
    assert tool.main(["--export", os.path.join(str(export_dir), "nope")]) == 2
    assert "demo.json" in capsys.readouterr().err


def test_a_128_px_model_draws_at_its_size(browser, tmp_path):
    from conftest import make_demo_generator

    gen = make_demo_generator(seed=4, size=128)
    export.export_demo(gen, str(tmp_path), tags=_tags(), check_n=1)
    with DemoServer(str(tmp_path)) as srv:
        page = _open(browser, srv.url)
        try:
            z0 = sample_z(1, random_state=12)[0]
            page.evaluate("a => { dcganDemo.setZ0(a[0]); dcganDemo.setStrength(a[1]); dcganDemo.setSliders(a[2]); }",
                          [z0.tolist(), 1.0, [0.0] * N_TAGS])
            page.evaluate("dcganDemo.draw()")
            assert page.evaluate("[document.getElementById('face').width, document.getElementById('face').height]") \
                == [128, 128]
            assert page.text_content("#face-size") == "128\u00d7128"  # the lead says what is drawn
            rgba = numpy.array(page.evaluate("dcganDemo.pixels()"), dtype=numpy.uint8).reshape(128, 128, 4)
            reference = to_image(export.chainer_output(gen, z0[None])[0])
            diff = numpy.abs(rgba[..., :3].astype(int) - reference.astype(int))
            assert numpy.mean(diff <= 1) >= 0.99 and not page.errors
        finally:
            page.close()
def _status(url):
    try:
        return _get(url)[0]
    except urllib.error.HTTPError as e:
        return e.code


def test_server_serves_no_links_out_no_listings_and_refuses_nul(export_dir, tmp_path):
    """A link inside the export to a file outside it is not followed; folders are not listed; /%00 is 400."""
    import shutil

    secret = tmp_path / "secret.txt"
    secret.write_text("top secret")
    export_copy = tmp_path / "export"
    shutil.copytree(export_dir, export_copy)
    os.symlink(secret, export_copy / "leak.txt")
    os.symlink(tmp_path, export_copy / "outside")
    os.makedirs(export_copy / "sub")
    (export_copy / "sub" / "inner.json").write_text("{}")
    with DemoServer(str(export_copy)) as srv:
        assert _status(srv.url + "export/leak.txt") == 404
        assert _status(srv.url + "export/outside/secret.txt") == 404
        assert _status(srv.url + "export/") == 404
        assert _status(srv.url + "export/sub/") == 404
        assert _status(srv.url + "export/sub") == 404
        assert _status(srv.url + "export/sub/inner.json") == 200
        assert _status(srv.url + "%00") == 400
        assert _status(srv.url + "export/%00demo.json") == 400
        assert _status(srv.url + "node_modules/") == 404
        assert _status(srv.url) == 200
        assert _status(srv.url + "export/demo.json") == 200
