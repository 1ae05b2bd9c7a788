"""Datasets of image files on disk: a folder, optionally with the project's ``manifest.jsonl``."""
import os
import warnings

import chainer
from PIL import Image

from chainer_dcgan.datasets.manifest import manifest_path, read_manifest
from chainer_dcgan.models import hparams
from chainer_dcgan.utils import parameter_error
from chainer_dcgan.utils.images import is_image_file, read_image, to_array

# A corrupt or hostile file must not exhaust memory: refuse images past ~90 megapixels.
Image.MAX_IMAGE_PIXELS = 90_000_000


class UnreadableImageWarning(UserWarning):
    """An image file was skipped because it could not be read or decoded."""


def list_images(root):
    """Records ``{"file": relative path, "tags": [...]}`` for ``root``.

    With ``root/manifest.jsonl``, its records in order; otherwise every image file below ``root``,
    sorted, with no tags.
    """
    root = os.fspath(root)
    if not os.path.isdir(root):
        raise parameter_error(FileNotFoundError, "dataset", " {}: no such folder".format(root))
    if os.path.exists(manifest_path(root)):
        return read_manifest(root)
    records = []
    for folder, dirs, files in os.walk(root):
        dirs.sort()
        for name in sorted(files):
            if is_image_file(name) and os.path.isfile(os.path.join(folder, name)):  # no FIFOs, sockets
                records.append({"file": os.path.relpath(os.path.join(folder, name), root), "tags": []})
    return records


class ImageDataset(chainer.dataset.DatasetMixin):
    """Face images from a folder, as ``float32 (3, size, size)`` arrays ``(pixel - 128) / 128``.

    PNG/JPEG/... in any mode (grayscale, RGBA, palette) are converted to RGB and resized to
    ``size`` with area filtering when needed. Unreadable files are skipped with an
    :class:`UnreadableImageWarning` naming each one, and counted in :attr:`skipped`, so a bad file
    never stops a run: found while listing (``verify=True``) they are left out; found later (the
    file changed under us) the next readable image stands in.

    Args:
        root (str): the folder; with ``manifest.jsonl`` its records (and tags) are used.
        size (int): side of the returned arrays.
        in_memory (bool): hold the encoded bytes in memory, as the original did, and decode per
            batch: no disk reads while training.
        verify (bool): decode every file once up front, to skip bad ones before training.
    """

    def __init__(self, root, size=hparams.IMAGE_SIZE, in_memory=False, verify=True):
        self.root = os.fspath(root)
        self.size = size
        self.skipped = []
        self._encoded = [] if in_memory else None
        self.records = []
        for record in list_images(self.root):
            path = os.path.join(self.root, record["file"])
            if os.path.exists(path) and not os.path.isfile(path):
                self._skip(path, "not a regular file")  # reading a FIFO would wait forever
                continue
            try:
                data = None
                if in_memory or verify:
                    with open(path, "rb") as f:
                        data = f.read()
                if verify:
                    read_image(data)
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                self._skip(path, e)
                continue
            self.records.append(record)
            if in_memory:
                self._encoded.append(data)
        if self.skipped:
            warnings.warn("{}: skipped {} unreadable image(s)".format(self.root, len(self.skipped)),
                          UnreadableImageWarning)
        if not self.records:
            raise parameter_error(ValueError, "dataset", " {}: no readable images".format(self.root))

    def _skip(self, path, error):
        self.skipped.append((path, str(error)))
        warnings.warn("skipping unreadable image {}: {}".format(path, error), UnreadableImageWarning)

    def __len__(self):
        return len(self.records)

    def tags(self, i):
        """The tags of example ``i`` (list of str)."""
        return self.records[i]["tags"]

    def path(self, i):
        """The file of example ``i`` (str, under ``root``)."""
        return os.path.join(self.root, self.records[i]["file"])

    def get_example(self, i):
        """Example ``i`` as ``float32 (3, size, size)``, ``(pixel - 128) / 128`` in ``[-1, 127/128]``.

        An unreadable file is skipped (warned about and counted) and the next readable one is
        returned instead.
        """
        for j in range(len(self.records)):
            k = (i + j) % len(self.records)
            source = self._encoded[k] if self._encoded is not None else self.path(k)
            try:
                return to_array(read_image(source, self.size))
            except (OSError, ValueError, Image.DecompressionBombError) as e:
                self._skip(self.path(k), e)
        raise RuntimeError("{}: no image could be decoded".format(self.root))
