"""examples/generate.py on a device: --gpu/--device draw the faces of the CPU from the same z."""
import chainer
import numpy
from conftest import run_script
from PIL import Image

from chainer_dcgan import Generator
from chainer_dcgan.models.serialization import save_model


def _pixels(path):
    return numpy.asarray(Image.open(path).convert("RGB")).astype(numpy.int16)


def test_device_flags_draw_the_same_faces_or_say_why_not(tmp_path):
    numpy.random.seed(0)
    save_model(str(tmp_path / "g.npz"), Generator(size=64))
    grid = ["--rows", 2, "--cols", 2, "--seed", 5]
    run_script("examples/generate.py", tmp_path / "g.npz", *grid, "--out", tmp_path / "default.png")
    run_script("examples/generate.py", tmp_path / "g.npz", *grid, "--device", "@numpy", "--out", tmp_path / "np.png")
    run_script("examples/generate.py", tmp_path / "g.npz", *grid, "--gpu", -1, "--out", tmp_path / "cpu.png")
    cpu = _pixels(tmp_path / "default.png")
    assert cpu.shape == (128, 128, 3)
    numpy.testing.assert_array_equal(_pixels(tmp_path / "np.png"), cpu)
    numpy.testing.assert_array_equal(_pixels(tmp_path / "cpu.png"), cpu)
    proc = run_script("examples/generate.py", tmp_path / "g.npz", *grid, "--gpu", 0, "--out", tmp_path / "gpu.png",
                      check=False)
    if chainer.backends.cuda.available:  # the same z (drawn on the host), float32 rounding apart
        assert proc.returncode == 0, proc.stderr[-3000:]
        assert numpy.abs(_pixels(tmp_path / "gpu.png") - cpu).max() <= 1
    else:
        lines = proc.stderr.strip().splitlines()
        assert proc.returncode == 2 and len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
        assert lines[0].startswith("error: --gpu 0: cannot use this device")
        assert not (tmp_path / "gpu.png").exists()
