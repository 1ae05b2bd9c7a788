import argparse
import os
import subprocess

import pytest

from chainer_dcgan.cli import (fraction, non_negative_float, non_negative_int, output_file, output_folder, output_image,
                               positive_int)


@pytest.mark.parametrize("parse, good, bad", [
    (positive_int, [("1", 1), ("30", 30)], ["0", "-3", "x", "1.5"]),
    (non_negative_int, [("0", 0), ("7", 7)], ["-1", "x"]),
    (non_negative_float, [("0", 0.0), ("0.25", 0.25)], ["-0.1", "nan", "x"]),
    (fraction, [("0", 0.0), ("0.5", 0.5)], ["1", "-0.1", "x"]),
])
def test_argument_types(parse, good, bad):
    for text, value in good:
        assert parse(text) == value
    for text in bad:
        with pytest.raises(argparse.ArgumentTypeError):
            parse(text)


def _devpts():
    """/dev/pts where it is a devpts mount (root may not create files there, yet os.access says yes)."""
    return "/dev/pts" if os.path.ismount("/dev/pts") else None


@pytest.fixture
def immutable_folder(tmp_path):
    """A folder with the immutable attribute: not even root can create files in it."""
    folder = tmp_path / "immutable"
    folder.mkdir()
    if subprocess.run(["chattr", "+i", str(folder)], capture_output=True).returncode != 0:
        pytest.skip("chattr +i is not permitted here")
    yield str(folder)
    subprocess.run(["chattr", "-i", str(folder)], check=True)


@pytest.fixture
def read_only_mount(tmp_path):
    """A read-only tmpfs (mounting needs root)."""
    folder = tmp_path / "ro"
    folder.mkdir()
    if subprocess.run(["mount", "-t", "tmpfs", "-o", "ro,size=1m", "tmpfs", str(folder)],
                      capture_output=True).returncode != 0:
        pytest.skip("cannot mount a tmpfs here (needs root)")
    yield str(folder)
    subprocess.run(["umount", str(folder)], check=True)


@pytest.mark.parametrize("folder", ["/proc/self", "/sys", _devpts(), "immutable_folder", "read_only_mount"])
def test_outputs_in_a_folder_root_cannot_write_in_are_refused(folder, request):
    if folder is None:
        pytest.skip("/dev/pts is not a devpts mount here")
    if not folder.startswith("/"):
        folder = request.getfixturevalue(folder)
    for parse, text in [(output_folder, folder), (output_folder, os.path.join(folder, "new", "run")),
                        (output_file, os.path.join(folder, "z.npy")), (output_image, os.path.join(folder, "g.png"))]:
        with pytest.raises(argparse.ArgumentTypeError, match="cannot write in {} ".format(folder)):
            parse(text)


def test_the_write_check_leaves_nothing_behind(tmp_path):
    assert output_folder(str(tmp_path)) == str(tmp_path)
    assert output_file(str(tmp_path / "sub" / "x.npy")) == str(tmp_path / "sub" / "x.npy")
    assert os.listdir(tmp_path) == []


def test_a_library_error_about_a_parameter_is_told_under_the_flag():
    from chainer_dcgan.cli import error_message
    from chainer_dcgan.datasets import TagVocabularyError
    from chainer_dcgan.datasets.tagged import choose_tags
    from chainer_dcgan.utils import parameter_error

    with pytest.raises(TagVocabularyError) as info:
        choose_tags([["a"], ["b"]], min_count=2)
    assert str(info.value) == "min_count 2: no tag is on at least 2 and missing from at least 2 of the 2 images"
    assert error_message(info.value) == ("--min-count 2: no tag is on at least 2 and missing from at least 2 of "
                                         "the 2 images")
    assert error_message(info.value, {"min_count": "--min-tag-count"}).startswith("--min-tag-count 2: no tag")
    assert error_message(parameter_error(FileNotFoundError, "snapshot", " x: no such snapshot")) == \
        "--resume x: no such snapshot"
    assert error_message(ValueError("plain")) == "plain"


def test_device_arguments_are_one_group(capsys):
    from chainer_dcgan.cli import add_device_arguments, device_from_args

    p = argparse.ArgumentParser()
    add_device_arguments(p)
    assert device_from_args(p.parse_args([])).xp.__name__ == "numpy"
    assert device_from_args(p.parse_args(["--device", "@numpy"])).xp.__name__ == "numpy"
    assert p.parse_args(["-g", "-1"]).gpu == -1
    for bad in (["--gpu", "-2"], ["--gpu", "x"], ["--gpu", "0", "--device", "@numpy"]):
        with pytest.raises(SystemExit):
            p.parse_args(bad)
    with pytest.raises(ValueError, match="^device nonsense: cannot use this device"):
        device_from_args(p.parse_args(["--device", "nonsense"]))
