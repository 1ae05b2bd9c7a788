import argparse

import pytest

from chainer_dcgan.cli import fraction, non_negative_float, non_negative_int, positive_int


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
