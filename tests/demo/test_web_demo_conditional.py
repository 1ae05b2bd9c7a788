"""The browser demo with a conditional export: one control per tag drives the model's input y."""
import chainer
import numpy
import pytest
from test_web_demo import _click_and_wait, _fill_and_wait, _open, _pixels, browser  # noqa: F401  (a shared fixture)

from chainer_dcgan.demo.server import DemoServer
from chainer_dcgan.export import export_demo
from chainer_dcgan.models import sample_z
from chainer_dcgan.training import seeded_models
from chainer_dcgan.utils.images import to_image

TAGS = ["blonde_hair", "blue_hair", "long_hair"]


@pytest.fixture(scope="module")
def cond_generator():
    """A conditional G with random tag offsets and running statistics; its outputs spread past [-1, 1]."""
    gen = seeded_models(0, TAGS)[0]
    rs = numpy.random.RandomState(0)
    for bn in (gen.bn0l, gen.bn1, gen.bn2, gen.bn3):
        bn.gamma_y.array[:] = rs.normal(0, 0.5, bn.gamma_y.shape)
        bn.beta_y.array[:] = rs.normal(0, 0.5, bn.beta_y.shape)
        bn.bn.avg_var[:] = rs.uniform(0.5, 2.0, bn.bn.avg_var.shape)
    y = (rs.uniform(size=(8, len(TAGS))) < 0.5).astype(numpy.float32)
    with chainer.using_config("train", False):
        std = float(gen(sample_z(8, random_state=1), y).array.std())
    gen.dc4.W.array *= 0.6 / std
    gen.dc4.b.array *= 0.6 / std
    return gen


@pytest.fixture(scope="module")
def cond_page(browser, cond_generator, tmp_path_factory):  # noqa: F811
    out = tmp_path_factory.mktemp("cond_export")
    export_demo(cond_generator, str(out), check_n=2)
    with DemoServer(str(out)) as server:
        page = _open(browser, server.url)
        yield page
        page.close()


def _chainer_pixels(gen, z, y):
    with chainer.using_config("train", False), chainer.using_config("enable_backprop", False):
        x = gen(z[None], numpy.asarray(y, numpy.float32)[None]).array[0]
    return to_image(x)


def test_conditional_page_shows_one_control_per_tag(cond_page):
    assert cond_page.evaluate("document.body.dataset.state") == "ready" and not cond_page.errors
    assert cond_page.evaluate("dcganDemo.conditionalTags") == TAGS
    assert cond_page.locator("#sliders input[id^=cond-]").count() == len(TAGS)
    assert cond_page.locator("#sliders input[id^=tag-]").count() == 0
    assert cond_page.is_hidden("#no-tags")
    assert cond_page.text_content("#face-size") == "96\u00d796" and cond_page.text_content("#z-dim") == "100"
    assert cond_page.evaluate("dcganDemo.tagWeights()") == [0, 0, 0]


def test_canvas_equals_chainer_for_z_and_y(cond_page, cond_generator):
    z0 = sample_z(1, random_state=11)[0]
    for y in ([1.0, 0.0, 0.5], [0.0, 1.0, 1.0]):
        cond_page.evaluate("a => { dcganDemo.setZ0(a[0]); dcganDemo.setStrength(1); dcganDemo.setTagWeights(a[1]); }",
                           [z0.tolist(), y])
        assert cond_page.evaluate("dcganDemo.tagWeights()") == y
        cond_page.evaluate("dcganDemo.draw()")
        want = _chainer_pixels(cond_generator, z0, y)
        diff = numpy.abs(_pixels(cond_page).astype(int) - want.astype(int))
        assert numpy.mean(diff <= 1) >= 0.99 and numpy.mean(diff == 0) >= 0.95


def test_moving_a_tag_control_changes_the_face_and_reset_clears_it(cond_page):
    cond_page.evaluate("dcganDemo.reset()")
    before, z_before = _pixels(cond_page), cond_page.evaluate("dcganDemo.getZ()")
    _fill_and_wait(cond_page, "#cond-1", "0.8")
    assert cond_page.text_content("#cond-1 + output") == "0.80"
    assert cond_page.evaluate("dcganDemo.tagWeights()") == [0, 0.8, 0]
    assert cond_page.evaluate("dcganDemo.getZ()") == z_before  # y moved, z did not
    assert numpy.abs(_pixels(cond_page).astype(int) - before).mean() > 1
    _click_and_wait(cond_page, "#reset")
    assert cond_page.evaluate("dcganDemo.tagWeights()") == [0, 0, 0]
    numpy.testing.assert_array_equal(_pixels(cond_page), before)
