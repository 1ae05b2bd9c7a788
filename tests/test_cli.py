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
