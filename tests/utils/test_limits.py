"""utils.limits: declared sizes and flag counts bounded by a documented share of physical memory."""
import numpy
import pytest

from chainer_dcgan.cli import error_message
from chainer_dcgan.utils import limits


@pytest.fixture
def four_gib(monkeypatch):
    monkeypatch.setattr(limits, "physical_memory", lambda: 4 << 30)


def test_the_budget_is_a_share_of_physical_memory(four_gib):
    assert limits.memory_budget() == int((4 << 30) * limits.MEMORY_FRACTION) == 2 << 30


def test_declared_bytes_never_overflow():
    assert limits.declared_bytes((10 ** 12, 10 ** 12), numpy.float64) == 8 * 10 ** 24
    assert limits.declared_bytes((), "<U100000") == 400000
    assert limits.declared_bytes((0, 10 ** 30), numpy.float32) == 0


def test_check_bytes_says_the_limit(four_gib):
    limits.check_bytes(2 << 30, "an array")  # exactly the budget passes
    with pytest.raises(limits.TooLarge, match=r"^an array needs 2 GiB, more than the limit of 2 GiB \(50% of "
                                              r"this machine's 4 GiB of memory\)$"):
        limits.check_bytes((2 << 30) + 1, "an array")
    with pytest.raises(limits.TooLarge, match="more than the limit of 1 KiB$"):
        limits.check_bytes(1025, "x", limit=1024)


def test_check_count_names_its_parameter_and_the_most_allowed(four_gib):
    assert limits.check_count("batchsize", 100, 1 << 20, "examples") == 100
    with pytest.raises(limits.TooLarge) as e:
        limits.check_count("batchsize", 10 ** 8, 1 << 20, "examples")
    assert error_message(e.value) == ("--batchsize 100000000: 100000000 examples need about 95.4 TiB, more than the "
                                      "limit of 2 GiB (50% of this machine's 4 GiB of memory): at most 2048")
    with pytest.raises(limits.TooLarge) as e:
        limits.check_count("rows", 10 ** 6, 1 << 20, "faces", shown="1000 x --cols 1000")
    assert error_message(e.value).startswith("--rows 1000 x --cols 1000: 1000000 faces need about")


@pytest.mark.parametrize("n, text", [(0, "0 bytes"), (1023, "1023 bytes"), (1536, "1.5 KiB"), (3 << 30, "3 GiB")])
def test_human(n, text):
    assert limits.human(n) == text


def test_the_faithful_recipe_fits_the_smallest_budget(monkeypatch):
    """The defaults (batch 100 at 96 px, 20000 synthetic faces, a 10x10 grid) pass on a 4 GiB machine."""
    monkeypatch.setattr(limits, "physical_memory", lambda: 4 << 30)
    limits.check_count("batchsize", 100, limits.training_bytes(96), "examples")
    limits.check_count("synthetic_size", 20000, 3 * 96 * 96, "faces")
    limits.check_count("rows", 100, limits.face_bytes(96), "faces")
