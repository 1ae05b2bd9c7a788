"""Where a process stands in a run: one process, or one rank of a ChainerMN job.

Single-process training uses :class:`Context` with no communicator; a ChainerMN job creates one
with :func:`create_context`. Training code asks the context for its device, its shard of the
data, its optimizers and whether it is the rank that writes outputs, so the same code serves both.

Data-parallel semantics (N ranks, batch size b per rank): every rank holds the whole model, draws its
own b real examples from its shard (``1/N`` of the data) and its own b latent vectors, and the
gradients are averaged over ranks before each Adam step, so one iteration sees ``N*b`` examples.
With plain BatchNormalization each rank normalizes over its own b examples; with
``mn_batchnorm`` the statistics are those of all ``N*b``, and the first update then equals that of
one process with batch ``N*b`` on the same examples and z, to float32 rounding
(``tests/training/test_distributed.py``). A real run does not see the same examples and z as one process
would: rank r shuffles its shard with seed ``seed + r`` and draws z and flips with seed
``seed + 7919 r``, so N ranks and one process agree in distribution, not draw for draw.

``chainermn`` (inside Chainer 7.8.1) and ``mpi4py`` are imported only when a communicator is used.
"""
import io
import sys
import warnings

import chainer
from chainer import training

from chainer_dcgan import _compat, functions
from chainer_dcgan.models.serialization import ModelFileError, SafeNpz
from chainer_dcgan.utils import parameter_error
from chainer_dcgan.utils.random_state import serialize_random_state

#: ChainerMN communicators and whether each needs GPUs (``pure_nccl`` also needs NCCL through CuPy).
COMMUNICATORS = {"naive": False, "flat": True, "non_cuda_aware": True, "pure_nccl": True}


def resolve_device(gpu=None, device=None):
    """A ``chainer.backend.Device`` from a ``device`` specifier (e.g. ``@cupy:0``) or a ``gpu`` id
    (``-1`` or None: CPU); ``device`` wins.

    Raises:
        ValueError: about ``device`` or ``gpu`` (:func:`~chainer_dcgan.utils.parameter_error`), when the
            device cannot be used (e.g. CuPy missing).
    """
    spec = device if device is not None else ("@numpy" if gpu is None or gpu < 0 else "@cupy:{}".format(gpu))
    parameter, value = ("device", device) if device is not None else ("gpu", gpu)
    try:
        dev = chainer.get_device(spec)
    except Exception as e:  # chainer raises several types for a missing or broken CuPy
        raise parameter_error(ValueError, parameter, " {}: cannot use this device ({}); {}".format(
            value, " ".join(str(e).split()), _compat.gpu_install_hint())) from None
    return dev


class Context:
    """The run's process layout.

    Args:
        comm: a ChainerMN communicator, or None for a single process.
        mn_batchnorm (bool): replace BatchNormalization by :class:`MultiNodeBatchNormalization`
            (batch statistics over all ranks), so N ranks of batch b match one of batch N*b.
        communicator (str or None): the communicator's name (a key of :data:`COMMUNICATORS`).
    """

    def __init__(self, comm=None, mn_batchnorm=False, communicator=None):
        if mn_batchnorm and comm is None:
            raise parameter_error(ValueError, "mn_batchnorm", " needs a communicator")
        self.comm = comm
        self.mn_batchnorm = mn_batchnorm
        self.communicator = communicator

    @property
    def rank(self):
        """This process's rank (int, 0 without ChainerMN)."""
        return 0 if self.comm is None else self.comm.rank

    @property
    def size(self):
        """Number of processes (int, 1 without ChainerMN)."""
        return 1 if self.comm is None else self.comm.size

    @property
    def is_root(self):
        """Whether this process writes snapshots, grids, logs and the progress bar."""
        return self.rank == 0

    def device(self, gpu=None, device=None):
        """This process's device (see :func:`resolve_device`). Under ChainerMN with a ``gpu`` id, each rank
        takes GPU ``intra_rank`` (its index among the ranks on its node); ``device`` is taken as given on
        every rank."""
        if self.comm is not None and device is None and gpu is not None and gpu >= 0:
            gpu = self.comm.intra_rank
        dev = resolve_device(gpu, device)
        if COMMUNICATORS.get(self.communicator) and dev.xp.__name__ == "numpy":
            raise parameter_error(ValueError, "communicator", " {} runs on GPUs only (give a GPU); on the CPU "
                                  "use naive".format(self.communicator))
        return dev

    def scatter(self, dataset, seed=0):
        """This rank's shard of ``dataset`` (the whole of it for a single process).

        Under ChainerMN only the root's ``dataset`` is used (others may pass None): it is pickled
        to every rank, shuffled with ``seed`` and cut into ``size`` equal parts (the last ones may
        repeat a few examples of the first when the length is not a multiple of ``size``).
        """
        if self.comm is None:
            return dataset
        import chainermn

        if self.is_root and len(dataset) < self.size:
            raise ValueError("dataset: {} examples cannot be shared by {} ranks".format(len(dataset), self.size))
        return chainermn.scatter_dataset(dataset if self.is_root else None, self.comm, shuffle=True, seed=seed)

    def optimizer(self, optimizer):
        """Wrap ``optimizer`` so that gradients are averaged over all ranks before each update.

        ChainerMN's wrapper spends its first ``update()`` broadcasting the root's parameters instead
        of updating; ours broadcasts in ``setup()``, so iteration 1 (and the first iteration after a
        resume) is a real update, as in a single process.
        """
        if self.comm is None:
            return optimizer
        return _synchronized_optimizer_class()(optimizer, self.comm)

    def model(self, link):
        """``link``, with :class:`MultiNodeBatchNormalization` if asked for (replaced in place).

        Parameter and persistent names are unchanged, so npz/HDF5 weights and snapshots load into
        either form.
        """
        if self.comm is None or not self.mn_batchnorm:
            return link
        return replace_batch_normalization(link, self.comm)

    def extend(self, trainer, snapshot_trigger):
        """Add what every rank needs in ``trainer``, on every rank.

        Under ChainerMN: :class:`RankStates` firing with ``snapshot_trigger`` (that of the root's
        trainer snapshots), so that those hold each rank's own iterator and random state and a
        resumed job replays the straight one.
        """
        if self.comm is not None:
            trainer.extend(RankStates(self.comm, trainer.updater), name="rank_states", trigger=snapshot_trigger)

    def broadcast_file(self, path):
        """The root's file ``path`` on every rank: ``path`` itself for a single process, else a binary
        file object holding the root's bytes (so other nodes need not see the root's disk).

        ``path`` matters on the root only; None there gives None everywhere.

        Raises:
            FileNotFoundError: on every rank, when the root cannot read ``path``.
        """
        if self.comm is None:
            return path
        payload = None
        if self.is_root and path is not None:
            try:
                with open(path, "rb") as f:
                    payload = f.read()
            except OSError as e:
                payload = "{}: {}".format(path, e.strerror or e)
        payload = self.comm.bcast_obj(payload)
        if isinstance(payload, str):
            raise parameter_error(FileNotFoundError, "snapshot", " {}".format(payload))
        return None if payload is None else io.BytesIO(payload)

    def check_snapshot(self, snapshot):
        """Raise ValueError unless the trainer snapshot (path or binary file object) was written by a
        run with as many processes as this one: the data shards and per-rank states depend on it."""
        try:
            with SafeNpz(snapshot) as npz:
                size = int(npz[_SIZE_KEY]) if _SIZE_KEY in npz.files else 1
        except FileNotFoundError:
            raise parameter_error(FileNotFoundError, "snapshot", " {}: no such snapshot".format(snapshot)) from None
        except (ModelFileError, OSError, TypeError) as e:
            raise parameter_error(ValueError, "snapshot", ": not a trainer snapshot ({})".format(e)) from e
        finally:
            if hasattr(snapshot, "seek"):
                snapshot.seek(0)
        if size != self.size:
            how = "without mpiexec" if size == 1 else "with mpiexec -n {}".format(size)
            raise parameter_error(ValueError, "snapshot", ": written by {} process(es); resume it {}"
                                  .format(size, how))

    def abort(self, code=1):
        """End every rank of the job with exit status ``code`` (a single process just exits)."""
        if self.comm is not None and self.size > 1:
            sys.stdout.flush()
            sys.stderr.flush()
            self.comm.mpi_comm.Abort(code)
        raise SystemExit(code)


def create_context(communicator=None, mn_batchnorm=False):
    """A :class:`Context`: single-process when ``communicator`` is None, else a ChainerMN one.

    A ChainerMN context also installs an ``excepthook`` that aborts the whole MPI job when a rank
    dies of an uncaught exception, so the other ranks do not wait forever in a collective.

    Args:
        communicator (str or None): a ChainerMN communicator name: ``naive`` (CPU or GPU),
            ``pure_nccl`` (GPUs, with NCCL), ``flat`` or ``non_cuda_aware`` (GPUs). Needs ``mpi4py``
            and processes launched by ``mpiexec``.
        mn_batchnorm (bool): see :class:`Context`.

    Raises:
        ValueError: ``mn_batchnorm`` without a communicator, an unknown communicator, or missing
            ``mpi4py``.
    """
    if communicator is None:
        return Context(None, mn_batchnorm)
    if communicator not in COMMUNICATORS:
        raise parameter_error(ValueError, "communicator", " {}: unknown; one of {}".format(
            communicator, ", ".join(COMMUNICATORS)))
    try:
        import mpi4py.MPI  # noqa: F401
    except ImportError as e:
        raise parameter_error(ValueError, "communicator", " {}: mpi4py is missing ({}); pip install '.[mpi]'"
                              .format(communicator, e)) from e
    import chainermn
    import chainermn.global_except_hook

    try:
        comm = chainermn.create_communicator(communicator)
    except (ImportError, RuntimeError) as e:  # e.g. pure_nccl without NCCL
        raise parameter_error(ValueError, "communicator", " {}: {}".format(communicator, e)) from e
    # The batched copy packs gradients with a CUDA kernel of ChainerMN's whose source uses the type
    # `half` without declaring it; CuPy 14's headers no longer provide it, so NVRTC refused that
    # kernel on the H200 (CUDA 13, 2026-12-04). The per-parameter copies do the same work with CuPy's
    # own copies (a few dozen parameters here).
    comm.set_config("batched_copy", False)
    if comm.size > 1 and chainermn.global_except_hook._orig_except_hook is None:
        chainermn.global_except_hook.add_hook()
    return Context(comm, mn_batchnorm, communicator)


def _synchronized_optimizer_class():
    from chainermn.optimizers import _MultiNodeOptimizer

    class SynchronizedOptimizer(_MultiNodeOptimizer):
        def __init__(self, actual_optimizer, communicator):
            super().__init__(actual_optimizer, communicator, True)

        def setup(self, link):
            super().setup(link)
            # Same weights everywhere from the start; recording the parameter list now makes the
            # first update() average gradients and step instead of broadcasting.
            self.communicator.bcast_data(link)
            self.is_changed(link)
            return self

    return SynchronizedOptimizer


def _multi_node_batch_normalization_class():
    import chainermn.links

    class MultiNodeBatchNormalization(chainermn.links.MultiNodeBatchNormalization):
        """ChainerMN's MultiNodeBatchNormalization that also takes our links' ``activation`` argument."""

        def __call__(self, x, activation=None, **kwargs):
            return functions.activation(super().__call__(x, **kwargs), activation)

    return MultiNodeBatchNormalization


def replace_batch_normalization(link, comm):
    """Replace, in place, every ``chainer.links.BatchNormalization`` in ``link`` by a multi-node one.

    Unlike ``chainermn.links.create_mnbn_model`` the replacements keep their names (``bn1`` stays
    ``bn1``), accept ``activation=`` like :class:`chainer_dcgan.links.BatchNormalization`, and
    carry over parameters and running statistics. Returns ``link``.
    """
    cls = _multi_node_batch_normalization_class()
    for name in list(getattr(link, "_children", ())):
        child = getattr(link, name)
        if isinstance(child, chainer.links.BatchNormalization):
            if getattr(child, "axis", None) is not None:
                raise ValueError("{}: BatchNormalization with axis={} has no multi-node form"
                                 .format(name, child.axis))
            with warnings.catch_warnings():
                warnings.simplefilter("ignore", FutureWarning)  # "experimental feature"
                mnbn = cls(child.avg_mean.shape, comm, decay=child.decay, eps=child.eps,
                           dtype=child.avg_mean.dtype, use_gamma=child.gamma is not None,
                           use_beta=child.beta is not None)  # (the class defines both as None)
            mnbn.copyparams(child)
            for persistent in child._persistent:
                mnbn.__dict__[persistent] = child.__dict__[persistent].copy() \
                    if hasattr(child.__dict__[persistent], "copy") else child.__dict__[persistent]
            mnbn.to_device(child.device)
            mnbn.name = name
            link.__dict__[name] = mnbn  # keeps the child order (setattr would append it last)
        elif isinstance(child, chainer.Link):
            replace_batch_normalization(child, comm)
    return link


_SIZE_KEY = "extensions/rank_states/size"  # the name given by Context.extend


def _serialize_rank_state(updater, serializer):
    updater.get_iterator("main").serialize(serializer["iterator"])
    serialize_random_state(serializer["random_state"], updater.random_state)


class RankStates(training.Extension):
    """Carries each rank's own iterator and updater random state in the root's trainer snapshots.

    The ranks' models and optimizers are identical, but each rank walks its own shard and draws
    its own z and flips. Every iteration the ranks send that state (a few kB) to the root, so a
    snapshot written there holds all of them; loading a snapshot, each rank takes its own.
    Fire it on the iterations where the root writes snapshots (every rank must call it together).

    Args:
        comm: the ChainerMN communicator.
        updater: this rank's :class:`chainer_dcgan.training.updater.DCGANUpdater`.
    """

    priority = training.PRIORITY_WRITER + 1  # before the snapshot writers (lower priority) run

    def __init__(self, comm, updater):
        self.comm = comm
        self.updater = updater
        self._states = None

    def __call__(self, trainer):
        own = chainer.serializers.DictionarySerializer()
        _serialize_rank_state(self.updater, own)
        self._states = self.comm.gather_obj(own.target)

    def serialize(self, serializer):
        if isinstance(serializer, chainer.Serializer):
            if self._states is None:
                return
            serializer("size", len(self._states))
            for rank, state in enumerate(self._states):
                for key, value in state.items():
                    serializer["rank{}".format(rank)](key, value)
            return
        try:
            size = int(serializer("size", None))
        except KeyError:
            raise parameter_error(ValueError, "snapshot", ": no per-rank state: it was not written by a "
                                  "ChainerMN run") from None
        if size != self.comm.size:
            raise parameter_error(ValueError, "snapshot", ": written by {} ranks; run it with mpiexec -n {}"
                                  .format(size, size))
        _serialize_rank_state(self.updater, serializer["rank{}".format(self.comm.rank)])
