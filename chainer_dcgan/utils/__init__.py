"""Small helpers every layer uses: atomic writes, bounded JSON reads, image <-> array, seeded random
sources, the cache folder; :class:`Closing` and :func:`parameter_error`."""


class Closing:
    """A mixin for classes with a ``close()``: ``with obj:`` closes ``obj`` on leaving the block."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def parameter_error(cls, parameter, detail):
    """An exception ``cls(parameter + detail)`` that remembers which parameter's value it is about.

    The library speaks of its own parameters (``"dataset /x: no such folder"``); a command line reports
    the same error under the flag that gave the value (``"--dataset /x: no such folder"``, see
    :func:`chainer_dcgan.cli.error_message`), so the library never needs to know its callers' flags.

    Args:
        cls: the exception class (``ValueError``, ``FileNotFoundError``, a library error...).
        parameter (str): the name of the value, as the library's signature spells it (``min_count``).
        detail (str): the rest of the message, with its separator (``": ..."`` or ``" VALUE: ..."``).

    Returns:
        the exception, with ``parameter`` and ``detail`` attributes.
    """
    error = cls(parameter + detail)
    error.parameter = parameter
    error.detail = detail
    return error
