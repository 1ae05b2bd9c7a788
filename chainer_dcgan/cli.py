"""Argument types shared by the command lines in ``examples/`` and ``tools/``.

Each raises ``argparse.ArgumentTypeError``, so argparse names the flag and exits with status 2.
"""
import argparse


def _number(text, kind):
    try:
        return kind(text)
    except ValueError:
        raise argparse.ArgumentTypeError("expected {}, got {!r}".format(
            "an integer" if kind is int else "a number", text)) from None


def positive_int(text):
    """An integer >= 1."""
    value = _number(text, int)
    if value <= 0:
        raise argparse.ArgumentTypeError("must be >= 1, got {}".format(text))
    return value


def non_negative_int(text):
    """An integer >= 0."""
    value = _number(text, int)
    if value < 0:
        raise argparse.ArgumentTypeError("must be >= 0, got {}".format(text))
    return value


def non_negative_float(text):
    """A number >= 0 (NaN is refused)."""
    value = _number(text, float)
    if not value >= 0:
        raise argparse.ArgumentTypeError("must be >= 0, got {}".format(text))
    return value


def fraction(text):
    """A number in [0, 1)."""
    value = _number(text, float)
    if not 0 <= value < 1:
        raise argparse.ArgumentTypeError("must be in [0, 1), got {}".format(text))
    return value


def positive_float(text):
    """A number > 0 (NaN and infinity are refused)."""
    value = _number(text, float)
    if not 0 < value < float("inf"):
        raise argparse.ArgumentTypeError("must be > 0, got {}".format(text))
    return value
