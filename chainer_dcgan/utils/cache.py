"""The package's one cache folder: downloads (the face cascade, InceptionV3 weights), FID statistics of
datasets and the browser demo's exports of shipped models all live below it."""
import os

#: The environment variable that moves the whole cache.
ENV_CACHE = "CHAINER_DCGAN_CACHE"


def cache_dir(*parts):
    """``$CHAINER_DCGAN_CACHE``, else ``$XDG_CACHE_HOME/chainer_dcgan``, else ``~/.cache/chainer_dcgan``;
    joined with ``parts`` (``cache_dir("inception")``). Nothing is created."""
    root = os.environ.get(ENV_CACHE)
    if not root:
        base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
        root = os.path.join(base, "chainer_dcgan")
    return os.path.join(root, *parts)
