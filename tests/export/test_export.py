"""chainer_dcgan.export and tools/export_weights.py: folded BatchNorm, ONNX checked against Chainer."""
import importlib.util
import json
import os

import numpy
import pytest
from conftest import REPO, make_demo_generator, run_script

from chainer_dcgan import export
from chainer_dcgan.models import Generator, sample_z
from chainer_dcgan.models.serialization import save_model
from chainer_dcgan.zspace.tagging import TagVector, read_tag_vectors, write_tag_vectors


def _load_tool(name):
    spec = importlib.util.spec_from_file_location(name, os.path.join(REPO, "tools", name + ".py"))
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _tags(n=3, z_dim=100, seed=0):
    rs = numpy.random.RandomState(seed)
    out = []
    for i in range(n):
        v = rs.uniform(-1, 1, z_dim)
        out.append(TagVector("tag_{}".format(i), numpy.round(v / numpy.abs(v).max(), 6), 10 + i))
    return out


@pytest.fixture(scope="module")
def exported(demo_generator, tmp_path_factory):
    out = tmp_path_factory.mktemp("export")
    manifest = export.export_demo(demo_generator, str(out), tags=_tags(), float16=True)
    return out, manifest


def test_folded_generator_is_the_test_mode_generator(demo_generator):
    z = sample_z(3, random_state=7)
    want = export.chainer_output(demo_generator, z)
    got = export.chainer_output(export.FoldedGenerator(export.fold_generator(demo_generator)), z)
    assert numpy.abs(want).max() > 1  # a model whose output is not trivially small
    numpy.testing.assert_allclose(got, want, rtol=0, atol=2e-5)


def test_export_matches_chainer_for_new_z(exported, demo_generator):
    out, manifest = exported
    z = sample_z(5, random_state=123)  # not the check's z
    want = export.chainer_output(demo_generator, z)
    got = export.run_onnx((out / export.MODEL_F32).read_bytes(), z)
    assert got.shape == (5, 3, 96, 96) and got.dtype == numpy.float32
    assert numpy.abs(got - want).max() <= export.TOLERANCE
    half = export.run_onnx((out / export.MODEL_F16).read_bytes(), z)
    assert numpy.abs(half - want).max() < 0.05  # float16 weights: close, not equal
    entries = manifest["models"]
    assert entries[export.MODEL_F32]["max_abs_error_vs_chainer"] <= export.TOLERANCE
    assert entries[export.MODEL_F16]["bytes"] < 0.55 * entries[export.MODEL_F32]["bytes"]


def test_exported_graph_has_no_batchnorm_and_opset_11(exported):
    import onnx

    model = onnx.load(str(exported[0] / export.MODEL_F32))
    ops = [n.op_type for n in model.graph.node]
    assert ops[0] == "Gemm" and "BatchNormalization" not in ops and ops.count("ConvTranspose") == 4
    assert [o.version for o in model.opset_import if o.domain in ("", "ai.onnx")] == [11]
    assert all(t.data_type == onnx.TensorProto.FLOAT for t in model.graph.initializer if t.name != "shape0")
    half = onnx.load(str(exported[0] / export.MODEL_F16))
    assert {t.data_type for t in half.graph.initializer if t.name != "shape0"} == {onnx.TensorProto.FLOAT16}


def test_manifest_and_tags_are_what_the_page_reads(exported):
    out, manifest = exported
    assert export.read_demo_manifest(str(out)) == manifest
    assert manifest["z_dim"] == 100 and manifest["image_size"] == 96 and manifest["tag_count"] == 3
    assert manifest["default_model"] == export.MODEL_F32
    tags = read_tag_vectors(str(out / manifest["tags"]), 100)
    for got, want in zip(tags, _tags()):
        assert got.name == want.name and got.count == want.count
        numpy.testing.assert_array_equal(got.v, want.v)
    assert not [f for f in os.listdir(out) if f.endswith(".tmp")]


def test_failed_check_raises_and_writes_nothing(demo_generator, tmp_path, monkeypatch):
    build = export.build_onnx

    def off_by_a_little(params, *args, **kwargs):
        params = dict(params, dc4_b=params["dc4_b"] + 1e-3)
        return build(params, *args, **kwargs)

    monkeypatch.setattr(export, "build_onnx", off_by_a_little)
    with pytest.raises(export.ExportCheckError, match="differs from Chainer"):
        export.export_demo(demo_generator, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_tag_vectors_of_another_z_size_are_refused(demo_generator, tmp_path):
    with pytest.raises(export.ExportError, match="tag_0"):
        export.export_demo(demo_generator, str(tmp_path), tags=_tags(1, z_dim=50))


def test_tanh_variant_exports(tmp_path):
    numpy.random.seed(3)
    manifest = export.export_demo(Generator(output_activation="tanh"), str(tmp_path), check_n=2)
    assert manifest["output_activation"] == "tanh" and manifest["tag_count"] == 0


def test_cli_npz_with_tags_and_original_hdf5(demo_generator, tmp_path, capsys):
    save_model(str(tmp_path / "gen.npz"), demo_generator)
    save_model(str(tmp_path / "gen.h5"), demo_generator)
    write_tag_vectors(str(tmp_path / "tags.json"), _tags(2))
    proc = run_script("tools/export_weights.py", "--model", tmp_path / "gen.npz", "--tags", tmp_path / "tags.json",
                      "--out", tmp_path / "a", "--check-n", 2)
    assert "2 tag sliders" in proc.stdout
    assert json.loads((tmp_path / "a" / "demo.json").read_text())["tag_count"] == 2
    tool = _load_tool("export_weights")
    assert tool.main(["--model", str(tmp_path / "gen.h5"), "--out", str(tmp_path / "b"), "--check-n", "2"]) == 0
    assert "0 tag sliders" in capsys.readouterr().out
    a = (tmp_path / "a" / export.MODEL_F32).read_bytes()
    assert (tmp_path / "b" / export.MODEL_F32).read_bytes() == a  # the same weights either way
    assert json.loads((tmp_path / "b" / "tags.json").read_text())["tags"] == []


def test_cli_errors_name_the_culprit(tmp_path, capsys):
    tool = _load_tool("export_weights")
    assert tool.main(["--model", str(tmp_path / "missing.npz"), "--out", str(tmp_path / "o")]) == 2
    assert "missing.npz" in capsys.readouterr().err
    save_model(str(tmp_path / "gen.npz"), Generator())
    (tmp_path / "tags.json").write_text(json.dumps({"tags": [{"name": "x", "v": [1.0] * 99}]}))
    assert tool.main(["--model", str(tmp_path / "gen.npz"), "--tags", str(tmp_path / "tags.json"),
                      "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err
    assert "tags.json" in err and "'v'" in err
    assert not (tmp_path / "o").exists()


def test_export_at_128_px_matches_chainer(tmp_path):
    gen = make_demo_generator(seed=3, size=128)
    manifest = export.export_demo(gen, str(tmp_path))
    assert manifest["image_size"] == 128
    z = sample_z(3, random_state=5)
    want = export.chainer_output(gen, z)
    got = export.run_onnx((tmp_path / export.MODEL_F32).read_bytes(), z)
    assert got.shape == (3, 3, 128, 128) and numpy.abs(want).max() > 1
    assert numpy.abs(got - want).max() <= export.TOLERANCE
