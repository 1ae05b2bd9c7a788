"""Where a process stands in a run: one process, or one rank of a ChainerMN job.

Single-process training uses :class:`Context` with no communicator; a ChainerMN job creates one
with :func:`create_context`. Training code asks the context for its device, its shard of the
data, its optimizers and whether it is the rank that writes outputs, so the same code serves both.
"""
import chainer


def resolve_device(gpu=None, device=None):
    """A ``chainer.backend.Device`` from ``--device SPEC`` or ``--gpu N`` (``-1`` or None: CPU).

    Raises:
        ValueError: naming the argument, when the device cannot be used (e.g. CuPy missing).
    """
    spec = device if device is not None else ("@numpy" if gpu is None or gpu < 0 else "@cupy:{}".format(gpu))
    arg = "--device {}".format(device) if device is not None else "--gpu {}".format(gpu)
    try:
        dev = chainer.get_device(spec)
    except Exception as e:  # chainer raises several types for a missing or broken CuPy
        raise ValueError("{}: cannot use this device ({}). For GPUs install CuPy: pip install '.[cuda12]'"
                         .format(arg, e)) from e
    return dev


class Context:
    """The run's process layout.

    Args:
        comm: a ChainerMN communicator, or None for a single process.
        mn_batchnorm (bool): replace BatchNormalization by ChainerMN's MultiNodeBatchNormalization
            (batch statistics over all ranks), so N ranks of batch b match one of batch N*b.
    """

    def __init__(self, comm=None, mn_batchnorm=False):
        self.comm = comm
        self.mn_batchnorm = mn_batchnorm

    @property
    def rank(self):
        return 0 if self.comm is None else self.comm.rank

    @property
    def size(self):
        return 1 if self.comm is None else self.comm.size

    @property
    def is_root(self):
        """Whether this process writes snapshots, grids, logs and the progress bar."""
        return self.rank == 0

    def device(self, gpu=None, device=None):
        """This process's device. Under ChainerMN with a GPU, each rank takes GPU ``intra_rank``."""
        if self.comm is not None and device is None and gpu is not None and gpu >= 0:
            gpu = self.comm.intra_rank
        return resolve_device(gpu, device)

    def scatter(self, dataset, seed=0):
        """This rank's shard of ``dataset`` (the whole of it for a single process)."""
        if self.comm is None:
            return dataset
        import chainermn

        return chainermn.scatter_dataset(dataset if self.is_root else None, self.comm, shuffle=True, seed=seed)

    def optimizer(self, optimizer):
        """Wrap ``optimizer`` so that gradients are averaged over all ranks before each update."""
        if self.comm is None:
            return optimizer
        import chainermn

        return chainermn.create_multi_node_optimizer(optimizer, self.comm)

    def model(self, link):
        """``link``, with multi-node BatchNormalization if asked for."""
        if self.comm is None or not self.mn_batchnorm:
            return link
        import chainermn.links

        return chainermn.links.create_mnbn_model(link, self.comm)


def create_context(communicator=None, mn_batchnorm=False):
    """A :class:`Context`: single-process when ``communicator`` is None, else a ChainerMN one.

    Args:
        communicator (str or None): a ChainerMN communicator name: ``naive`` or ``flat`` on CPU,
            ``pure_nccl`` on GPUs. Needs ``mpi4py`` and an MPI launched with ``mpiexec``.
    """
    if communicator is None:
        if mn_batchnorm:
            raise ValueError("--mn-batchnorm needs --communicator")
        return Context()
    import chainermn

    return Context(chainermn.create_communicator(communicator), mn_batchnorm)
