"""NumPy random states: seeding the global one for a block, and saving one inside Chainer snapshots
(so resumed runs replay exactly)."""
import contextlib

import numpy


@contextlib.contextmanager
def seeded_global(seed):
    """Seed NumPy's global random state (which Chainer's initializers draw from) for the block, then
    put back the state it had: ``with seeded_global(0): gen = Generator()``."""
    state = numpy.random.get_state()
    numpy.random.seed(seed)
    try:
        yield
    finally:
        numpy.random.set_state(state)


def serialize_random_state(serializer, random_state):
    """Save ``random_state`` into, or restore it from, a Chainer (de)serializer.

    Args:
        serializer: a ``chainer.Serializer`` or ``chainer.Deserializer`` (already scoped).
        random_state (numpy.random.RandomState): modified in place when loading.
    """
    name, keys, pos, has_gauss, cached = random_state.get_state()
    keys = serializer("keys", numpy.asarray(keys, dtype=numpy.uint32))
    counters = serializer("counters", numpy.asarray([pos, has_gauss], dtype=numpy.int64))
    cached = serializer("cached_gaussian", numpy.asarray(cached, dtype=numpy.float64))
    if not isinstance(serializer, _serializer_type()):
        random_state.set_state((name, numpy.asarray(keys, dtype=numpy.uint32),
                                int(counters[0]), int(counters[1]), float(cached)))


def _serializer_type():
    import chainer

    return chainer.Serializer
