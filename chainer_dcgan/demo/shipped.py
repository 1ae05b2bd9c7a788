"""The browser demo's export of a shipped model (:mod:`chainer_dcgan.models.pretrained`), made once and cached."""
import hashlib
import os
import shutil
import tempfile

from chainer_dcgan import export
from chainer_dcgan.models.pretrained import DEFAULT, ENCODER, FIRST_FACE, TAGS, companion, file_of, read_first_face
from chainer_dcgan.models.serialization import load_generator
from chainer_dcgan.utils.cache import cache_dir as package_cache
from chainer_dcgan.zspace.inversion import load_encoder
from chainer_dcgan.zspace.tagging import read_tag_vectors

__all__ = ["demo_export"]


def demo_export(name=DEFAULT, cache_dir=None):
    """The folder of the browser demo's export of shipped model ``name``, made on first use.

    The export (ONNX checked against Chainer, with the model's tag vectors; see
    :func:`chainer_dcgan.export.export_demo`) goes to ``cache_dir`` (default
    ``<cache>/demo``, the cache being :func:`chainer_dcgan.utils.cache.cache_dir`) under a name holding the generator's sha256, so a
    changed model gets a new export. It is built in a temporary folder and renamed into place.

    Returns:
        str: the export folder (holds ``demo.json``).
    """
    gen_path = file_of(name)
    first_path = companion(name, FIRST_FACE)
    encoder_path = companion(name, ENCODER)
    sha = hashlib.sha256()
    for path in filter(None, (gen_path, first_path, encoder_path)):  # a new first face or encoder: a new export
        with open(path, "rb") as f:
            sha.update(hashlib.file_digest(f, "sha256").digest())
    digest = sha.hexdigest()[:16]
    root = cache_dir or package_cache("demo")
    folder = os.path.join(root, "{}-{}".format(name, digest))
    if os.path.isfile(os.path.join(folder, export.MANIFEST)):
        return folder
    gen = load_generator(gen_path)
    tags_path = companion(name, TAGS)
    tags = read_tag_vectors(tags_path, gen.z_dim) if tags_path else []
    first_z = read_first_face(first_path) if first_path else None
    os.makedirs(root, exist_ok=True)
    tmp = tempfile.mkdtemp(prefix=".{}-".format(name), dir=root)
    try:
        encoder = load_encoder(encoder_path, gen) if encoder_path else None
        export.export_demo(gen, tmp, tags=tags, check_n=2, first_z=first_z, encoder=encoder)
        os.chmod(tmp, 0o777 & ~_umask())
        try:
            os.rename(tmp, folder)
        except OSError:  # another process made it first
            if not os.path.isfile(os.path.join(folder, export.MANIFEST)):
                raise
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    return folder


def _umask():
    mask = os.umask(0)
    os.umask(mask)
    return mask
