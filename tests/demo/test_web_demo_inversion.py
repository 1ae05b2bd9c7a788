"""The page's "bring your own face" in headless Chromium: an image file (input or drop) -> the exported
encoder -> z0 -> the face, checked against Chainer's G(E(image)) for the pixels the page fed to E."""
import io

import numpy
import pytest
from test_web_demo import _open, _pixels, browser  # noqa: F401  (a shared fixture)
from test_web_demo_studio import _chainer_pixels, _close_to, _studio_tags, _vectors
from PIL import Image

from chainer_dcgan import export, zspace
from chainer_dcgan.datasets.synthetic import SyntheticFaces
from chainer_dcgan.demo.server import DemoServer
from chainer_dcgan.models import sample_z
from chainer_dcgan.zspace import inversion

N_TAGS = 4


def _tiny_encoder(generator):
    """An untrained narrow encoder for ``generator`` whose BatchNorm statistics are not the identity and
    whose z spread over most of [-1, 1] (so folding and the comparisons are not trivial). Seeded."""
    numpy.random.seed(5)
    enc = inversion.Encoder(width=8, generator=inversion.generator_digest(generator))
    rs = numpy.random.RandomState(6)
    for i in range(1, enc.blocks):
        bn = getattr(enc, "bn{}".format(i))
        bn.avg_mean[...] = rs.normal(0, 0.05, bn.avg_mean.shape)
        bn.avg_var[...] = rs.uniform(0.5, 2.0, bn.avg_var.shape)
    enc.fc.W.array *= 8.0
    return enc


@pytest.fixture(scope="module")
def encoder(demo_generator):
    return _tiny_encoder(demo_generator)


@pytest.fixture(scope="module")
def own_page(browser, demo_generator, encoder, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("inversion_export")
    manifest = export.export_demo(demo_generator, str(out), tags=_studio_tags(), check_n=1,
                                  first_z=sample_z(1, random_state=31)[0], encoder=encoder)
    assert manifest["encoder"]["file"] == "encoder.onnx" and (out / "encoder.onnx").is_file()
    with DemoServer(str(out)) as srv:
        page = _open(browser, srv.url)
        yield page
        page.close()


def _png(path, image):
    Image.fromarray(image).save(str(path))
    return path


def _upload_and_wait(page, selector, path):
    before = page.evaluate("dcganDemo.drawn")
    page.set_input_files(selector, str(path))
    page.wait_for_function("n => dcganDemo.drawn > n", arg=before)
    page.evaluate("dcganDemo.idle()")


def _fed(page):
    """The RGB pixels the page gave its encoder, uint8 (96, 96, 3)."""
    rgba = numpy.array(page.evaluate("dcganDemo.ownPixels()"), numpy.uint8).reshape(96, 96, 4)
    return rgba[..., :3]


def _check_face(page, generator, encoder, sliders):
    """z0 is Chainer's E(pixels fed) to the export tolerance, and the canvas is G(compose(z0, 1, sliders))."""
    fed = _fed(page)
    want_z = inversion.encode(encoder, fed[None])[0]
    z0 = numpy.array(page.evaluate("dcganDemo.getZ0()"), numpy.float32)
    assert numpy.abs(z0 - want_z).max() <= export.TOLERANCE
    assert page.evaluate("dcganDemo.sliderValues()") == sliders
    z = zspace.compose(z0, 1.0, sliders, _vectors())
    assert _close_to(_pixels(page), _chainer_pixels(generator, z))
    return z0


def test_an_uploaded_face_is_encoded_drawn_and_moved_by_the_sliders(own_page, demo_generator, encoder, tmp_path):
    assert own_page.evaluate("dcganDemo.hasEncoder") and own_page.is_visible("#own-face")
    own_page.evaluate("a => { dcganDemo.setStrength(0.5); dcganDemo.setSliders(a); return dcganDemo.draw(); }",
                      [0.0] * N_TAGS)
    face = SyntheticFaces(1, seed=7).image(0)  # a 96 px face: the page feeds it to E unchanged
    _upload_and_wait(own_page, "#own-file", _png(tmp_path / "mine.png", face))
    numpy.testing.assert_array_equal(_fed(own_page), face)
    assert own_page.evaluate("Number(document.getElementById('strength').value)") == 1
    z0 = _check_face(own_page, demo_generator, encoder, [0.0] * N_TAGS)
    assert "your face from mine.png" in own_page.text_content("#status")
    assert own_page.evaluate("dcganDemo.encodeMs") > 0
    # The sliders move the uploaded face as any other.
    own_page.evaluate("a => { dcganDemo.setSliders(a); return dcganDemo.draw(); }", [0.0, 0.5, 0.0, -0.5])
    numpy.testing.assert_array_equal(numpy.array(own_page.evaluate("dcganDemo.getZ0()"), numpy.float32), z0)
    _check_face(own_page, demo_generator, encoder, [0.0, 0.5, 0.0, -0.5])
    own_page.evaluate("() => { dcganDemo.setSliders([0, 0, 0, 0]); }")


def test_a_larger_oblong_image_is_cut_to_its_middle_square_and_resized(own_page, demo_generator, encoder, tmp_path):
    rs = numpy.random.RandomState(8)
    big = numpy.repeat(numpy.repeat(rs.randint(0, 256, (30, 40, 3)), 5, axis=0), 5, axis=1).astype(numpy.uint8)
    _upload_and_wait(own_page, "#own-file", _png(tmp_path / "wide.png", big))  # 200x150
    fed = _fed(own_page).astype(float)
    # The middle 150x150 square, resized to 96 px: close to PIL's area resize of the same square.
    want = numpy.asarray(Image.fromarray(big[:, 25:175]).resize((96, 96), Image.BOX), float)
    assert numpy.abs(fed - want).mean() < 12
    _check_face(own_page, demo_generator, encoder, [0.0] * N_TAGS)
    assert "middle square of 200x150" in own_page.text_content("#status")


def test_a_face_dropped_on_the_canvas_is_encoded(own_page, demo_generator, encoder):
    face = SyntheticFaces(2, seed=7).image(1)
    buf = io.BytesIO()
    Image.fromarray(face).save(buf, format="PNG")
    before = own_page.evaluate("dcganDemo.drawn")
    own_page.evaluate("""bytes => {
        const dt = new DataTransfer();
        dt.items.add(new File([new Uint8Array(bytes)], 'dropped.png', { type: 'image/png' }));
        document.querySelector('.view').dispatchEvent(new DragEvent('drop', { dataTransfer: dt, bubbles: true,
                                                                               cancelable: true }));
    }""", list(buf.getvalue()))
    own_page.wait_for_function("n => dcganDemo.drawn > n", arg=before)
    own_page.evaluate("dcganDemo.idle()")
    numpy.testing.assert_array_equal(_fed(own_page), face)
    _check_face(own_page, demo_generator, encoder, [0.0] * N_TAGS)


@pytest.mark.parametrize("name, data, message", [
    ("notes.png", b"these are not pixels", "not an image this browser can read"),
    ("tiny.png", None, "10x10 pixels is too small for a face"),
])
def test_a_file_that_is_no_face_is_refused_and_the_face_kept(own_page, tmp_path, name, data, message):
    own_page.evaluate("a => { dcganDemo.setZ0(a); return dcganDemo.draw(); }",
                      list(map(float, sample_z(1, random_state=9)[0])))
    z0, pixels = own_page.evaluate("dcganDemo.getZ0()"), _pixels(own_page)
    path = tmp_path / name
    if data is None:
        _png(path, numpy.zeros((10, 10, 3), numpy.uint8))
    else:
        path.write_bytes(data)
    own_page.set_input_files("#own-file", str(path))
    own_page.wait_for_function("document.body.dataset.state === 'error'")
    status = own_page.text_content("#status")
    assert status.startswith("error: {}: ".format(name)) and message in status, status
    assert own_page.evaluate("dcganDemo.getZ0()") == z0
    numpy.testing.assert_array_equal(_pixels(own_page), pixels)
    own_page.evaluate("dcganDemo.draw()")
    assert own_page.evaluate("document.body.dataset.state") == "ready"


def test_an_export_without_an_encoder_has_no_upload_button(browser, demo_generator, tmp_path):  # noqa: F811
    export.export_demo(demo_generator, str(tmp_path), check_n=1)
    with DemoServer(str(tmp_path)) as srv:
        page = _open(browser, srv.url)
        try:
            assert not page.evaluate("dcganDemo.hasEncoder") and not page.is_visible("#own-face")
        finally:
            page.close()


def test_an_encoder_for_another_generator_is_not_exported(demo_generator, tmp_path):
    from conftest import make_demo_generator

    other = _tiny_encoder(make_demo_generator(seed=1))
    with pytest.raises(export.ExportError, match="trained for another generator"):
        export.export_demo(demo_generator, str(tmp_path), check_n=1, encoder=other)
    assert not (tmp_path / "demo.json").exists()


def test_an_export_whose_encoder_file_is_gone_is_refused(demo_generator, encoder, tmp_path):
    export.export_demo(demo_generator, str(tmp_path), check_n=1, encoder=encoder)
    assert export.read_demo_manifest(str(tmp_path))["encoder"]["file"] == "encoder.onnx"
    (tmp_path / "encoder.onnx").unlink()
    with pytest.raises(export.ExportError, match="names 'encoder.onnx', which is missing"):
        export.read_demo_manifest(str(tmp_path))
