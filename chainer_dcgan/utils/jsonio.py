"""Every JSON and JSON Lines document the project reads goes through :func:`loads` or :func:`load`.

Python's own parser recurses once per nesting level, so a document of a few thousand ``[`` ends in
``RecursionError`` (not a ``ValueError``: callers' error handling missed it and a traceback was
printed). These functions refuse a document nested deeper than :data:`MAX_DEPTH` before parsing it,
with :class:`json.JSONDecodeError` (a ``ValueError``), the error every caller already handles. No file
of the project nests deeper than 4 levels.

What a document holds is checked where it is read, with :func:`expect`: a field of the wrong type
(an id of ``"abc"``, ``1e999`` or ``[1]``, tags of ``5``) raises :class:`WrongType`, also a
``ValueError``, naming the field, instead of a ``TypeError`` or ``OverflowError`` further on.
"""
import json
import math
import re

__all__ = ["MAX_DEPTH", "loads", "load", "expect", "WrongType", "KINDS"]

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


class WrongType(ValueError):
    """A JSON value is not of the type its reader needs (see :func:`expect`)."""


def _is_int(v):
    return isinstance(v, int) and not isinstance(v, bool)


def _is_number(v):
    return (_is_int(v) or isinstance(v, float)) and math.isfinite(v)


#: What :func:`expect` checks: kind -> (test, how the error says it).
KINDS = {
    "int": (_is_int, "an integer"),
    "count": (lambda v: _is_int(v) and v >= 0, "an integer >= 0"),
    "positive": (lambda v: _is_int(v) and v >= 1, "an integer >= 1"),
    "number": (_is_number, "a finite number"),
    "str": (lambda v: isinstance(v, str), "a string"),
    "name": (lambda v: isinstance(v, str) and v != "", "a non-empty string"),
    "object": (lambda v: isinstance(v, dict), "an object"),
    "list": (lambda v: isinstance(v, list), "a list"),
    "strings": (lambda v: isinstance(v, list) and all(isinstance(x, str) for x in v), "a list of strings"),
    "numbers": (lambda v: isinstance(v, list) and all(_is_number(x) for x in v), "a list of finite numbers"),
}


def expect(value, kind, what, optional=False):
    """``value`` when it is of ``kind`` (a key of :data:`KINDS`: ``"int"`` is an integer and not a
    bool, ``"number"`` a finite int or float...); with ``optional``, None passes too.

    Raises:
        WrongType: ``"WHAT must be KIND, got VALUE"`` (the value shortened to 40 characters).
    """
    test, description = KINDS[kind]
    if (optional and value is None) or test(value):
        return value
    shown = repr(value)
    if len(shown) > 40:
        shown = shown[:37] + "..."
    raise WrongType("{} must be {}, got {}".format(what, description, shown))
