"""Every JSON and JSON Lines document the project reads goes through :func:`loads` or :func:`load`.

Python's own parser recurses once per nesting level, so a document of a few thousand ``[`` ends in
``RecursionError`` (not a ``ValueError``: callers' error handling missed it and a traceback was
printed). These functions refuse a document nested deeper than :data:`MAX_DEPTH` before parsing it,
with :class:`json.JSONDecodeError` (a ``ValueError``), the error every caller already handles. No file
of the project nests deeper than 4 levels.
"""
import json
import re

__all__ = ["MAX_DEPTH", "loads", "load"]

#: The deepest nesting of arrays and objects accepted.
MAX_DEPTH = 64

_STRING = re.compile(r'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKETS = re.compile(r"[\[\]{}]")


def _depth_error(text):
    """A JSONDecodeError at the first bracket nested deeper than MAX_DEPTH, or None."""
    if text.count("[") + text.count("{") <= MAX_DEPTH:  # the common case: nothing to scan
        return None
    depth = 0
    for m in _BRACKETS.finditer(_STRING.sub(lambda s: " " * len(s.group()), text)):
        depth += 1 if m.group() in "[{" else -1
        if depth > MAX_DEPTH:
            return json.JSONDecodeError("nested deeper than {} levels".format(MAX_DEPTH), text, m.start())
    return None


def loads(text):
    """``json.loads(text)`` with the nesting bounded; bytes are read as UTF-8.

    Raises:
        json.JSONDecodeError: not JSON, or nested deeper than :data:`MAX_DEPTH`.
    """
    if isinstance(text, (bytes, bytearray)):
        text = text.decode("utf-8")
    error = _depth_error(text)
    if error is not None:
        raise error
    try:
        return json.loads(text)
    except RecursionError:  # a smaller stack than expected: the same answer
        raise json.JSONDecodeError("nested too deeply", text, 0) from None


def load(f):
    """:func:`loads` of an open text file's whole content."""
    return loads(f.read())
