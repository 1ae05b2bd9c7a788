"""Small helpers every layer uses: atomic writes, bounded JSON reads, image <-> array, seeded random
sources, the cache folder; and :class:`Closing`."""


class Closing:
    """A mixin for classes with a ``close()``: ``with obj:`` closes ``obj`` on leaving the block."""

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()
