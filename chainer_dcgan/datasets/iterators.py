"""A shuffling iterator whose future order survives a snapshot, for exact resumes."""
import numpy
from chainer.iterators import SerialIterator, ShuffleOrderSampler

from chainer_dcgan.utils.random_state import serialize_random_state


class ResumableIterator(SerialIterator):
    """``SerialIterator`` that also saves its shuffling random state in snapshots.

    Chainer's own saves the current order and position but not the random state that draws the
    next epoch's order, so a resumed run would see different batches from the next epoch on.

    Args:
        dataset: any Chainer dataset.
        batch_size (int): examples per batch.
        seed (int or None): seed of the shuffling.
        repeat, shuffle: as in ``SerialIterator``.
    """

    def __init__(self, dataset, batch_size, seed=None, repeat=True, shuffle=True):
        self.random_state = numpy.random.RandomState(seed)
        sampler = ShuffleOrderSampler(self.random_state) if shuffle else None
        super().__init__(dataset, batch_size, repeat=repeat, shuffle=None if shuffle else False,
                         order_sampler=sampler)

    def serialize(self, serializer):
        super().serialize(serializer)
        serialize_random_state(serializer["random_state"], self.random_state)
