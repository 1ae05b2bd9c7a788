import json

import numpy
import pytest
from conftest import run_script

from chainer_dcgan.export import ExportError, export_demo, read_demo_manifest
from chainer_dcgan.export.conditional import build_conditional_onnx, fold_conditional, run_conditional_onnx
from chainer_dcgan.models import sample_z
from chainer_dcgan.models.serialization import save_model
from chainer_dcgan.training import seeded_models

pytest.importorskip("onnxruntime")

TAGS = ["blonde_hair", "blue_hair", "long_hair"]


def _trained_like(size=96):
    """A conditional G with random tag offsets and running statistics, as training leaves them."""
    g = seeded_models(0, TAGS, size=size)[0]
    rs = numpy.random.RandomState(0)
    for bn in [g.bn0l] + [getattr(g, "bn{}".format(i)) for i in range(1, g.blocks)]:
        bn.gamma_y.array[:] = rs.normal(0, 0.5, bn.gamma_y.shape)
        bn.beta_y.array[:] = rs.normal(0, 0.5, bn.beta_y.shape)
        bn.gamma.array[:] = rs.uniform(0.5, 1.5, bn.gamma.shape)
        bn.bn.avg_mean[:] = rs.normal(0, 0.1, bn.bn.avg_mean.shape)
        bn.bn.avg_var[:] = rs.uniform(0.5, 2.0, bn.bn.avg_var.shape)
    return g


@pytest.fixture(scope="module")
def gen():
    return _trained_like()


@pytest.mark.parametrize("size", [64, 96, 128])
def test_onnx_output_equals_chainer_for_random_z_and_y(gen, size):
    import chainer

    gen = gen if size == 96 else _trained_like(size)
    model = build_conditional_onnx(fold_conditional(gen)).SerializeToString()
    rs = numpy.random.RandomState(3)
    z = sample_z(5, random_state=rs)
    y = rs.uniform(size=(5, 3)).astype(numpy.float32)
    y[:2] = rs.uniform(size=(2, 3)) < 0.5
    with chainer.using_config("train", False):
        want = gen(z, y).array
    got = run_conditional_onnx(model, z, y)
    assert got.shape == (5, 3, size, size)
    numpy.testing.assert_allclose(got, want, atol=1e-4, rtol=0)
    # y is an input of the graph: other tags, other faces, from the same z
    other = run_conditional_onnx(model, z, 1.0 - y)
    assert numpy.abs(other - got).mean() > 1e-2


def test_one_exporter_writes_the_vocabulary_and_refuses_what_only_fits_unconditional(gen, tmp_path):
    manifest = export_demo(gen, str(tmp_path / "e"))
    assert manifest["conditional"]["tags"] == TAGS
    assert manifest["models"]["generator.onnx"]["max_abs_error_vs_chainer"] <= 1e-4
    assert read_demo_manifest(str(tmp_path / "e"))["conditional"]["tags"] == TAGS
    assert json.loads((tmp_path / "e" / "tags.json").read_text())["tags"] == []
    for extra in ({"float16": True}, {"encoder": object()}):
        with pytest.raises(ExportError, match="conditional on 3 tags"):
            export_demo(gen, str(tmp_path / "f"), **extra)
    assert not (tmp_path / "f").exists()
    with pytest.raises(ExportError, match="expected a ConditionalGenerator"):
        fold_conditional(seeded_models(0)[0])


def test_the_old_name_exports_the_same_files(gen, tmp_path):
    from chainer_dcgan.export.conditional import export_conditional_demo

    export_conditional_demo(gen, str(tmp_path / "old"))
    export_demo(gen, str(tmp_path / "new"))
    for name in ("generator.onnx", "tags.json", "demo.json"):
        assert (tmp_path / "old" / name).read_bytes() == (tmp_path / "new" / name).read_bytes(), name
    with pytest.raises(ExportError, match="expected a ConditionalGenerator"):
        export_conditional_demo(seeded_models(0)[0], str(tmp_path / "g"))


def test_export_weights_cli_with_a_conditional_model(gen, tmp_path):
    path = tmp_path / "gen.npz"
    save_model(str(path), gen)
    proc = run_script("tools/export_weights.py", "--model", path, "--out", tmp_path / "e")
    assert "generator.onnx" in proc.stdout
    assert json.loads((tmp_path / "e" / "demo.json").read_text())["conditional"]["tags"] == TAGS
    proc = run_script("tools/export_weights.py", "--model", path, "--out", tmp_path / "f", "--float16", check=False)
    assert proc.returncode != 0 and "conditional on 3 tags" in proc.stderr and not (tmp_path / "f").exists()
