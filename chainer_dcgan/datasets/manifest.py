"""The project's one dataset format: ``DIR/manifest.jsonl``, one JSON object a line.

Each line holds at least ``{"file": "relative/path.png", "tags": ["long_hair", ...]}``; other keys
(``source``, ``post_id``, ``box``, ...) are kept as they are. ``file`` is relative to ``DIR``.
"""
import json
import os

from chainer_dcgan.utils import Closing, jsonio
from chainer_dcgan.utils.atomic import JsonlAppender

MANIFEST_NAME = "manifest.jsonl"


class ManifestError(ValueError):
    """A manifest line that is not a JSON object with ``file`` (str) and ``tags`` (list of str)."""


def manifest_path(root):
    """``root/manifest.jsonl``."""
    return os.path.join(os.fspath(root), MANIFEST_NAME)


def validate_record(record, where="record"):
    """Check one manifest record and return it.

    ``file`` must be a non-empty relative path inside the dataset folder, ``tags`` (optional) a
    list of str; other keys are free.

    Raises:
        ManifestError: naming ``where`` and the field.
    """
    if not isinstance(record, dict):
        raise ManifestError("{}: expected a JSON object, got {}".format(where, type(record).__name__))
    file = record.get("file")
    if not isinstance(file, str) or not file:
        raise ManifestError("{}: field 'file' must be a non-empty string".format(where))
    if os.path.isabs(file) or ".." in file.replace("\\", "/").split("/"):
        raise ManifestError("{}: field 'file' must be a path inside the dataset folder, got {!r}".format(where, file))
    tags = record.get("tags", [])
    if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
        raise ManifestError("{}: field 'tags' must be a list of strings".format(where))
    return record


def read_manifest(root):
    """Read ``root/manifest.jsonl`` into a list of dicts (``tags`` defaults to ``[]``).

    Raises:
        FileNotFoundError: no manifest in ``root``.
        ManifestError: a line is malformed; the message names the file and line number.
    """
    path = manifest_path(root)
    records = []
    with open(path, "rb") as f:
        for lineno, raw in enumerate(f, 1):
            where = "{}:{}".format(path, lineno)
            try:
                line = raw.decode("utf-8")
            except UnicodeDecodeError as e:
                if not raw.endswith(b"\n"):
                    break  # a torn last line, cut inside a character
                raise ManifestError("{}: not UTF-8 (byte {} of the line)".format(where, e.start + 1)) from None
            if not line.strip():
                continue
            try:
                record = jsonio.loads(line)
            except json.JSONDecodeError as e:
                if not line.endswith("\n"):
                    break  # a torn last line from a killed writer: everything before it stands
                raise ManifestError("{}: not valid JSON ({})".format(where, e.msg)) from None
            validate_record(record, where)
            record.setdefault("tags", [])
            records.append(record)
    return records


class ManifestWriter(Closing):
    """Appends records to ``root/manifest.jsonl``, one flushed and fsynced line each.

    A killed writer leaves at most one torn last line, which ``read_manifest`` ignores and
    ``ManifestWriter`` removes when it reopens the file.
    """

    def __init__(self, root):
        os.makedirs(os.fspath(root), exist_ok=True)
        self.path = manifest_path(root)
        self._out = JsonlAppender(self.path)

    def write(self, record):
        """Append ``record`` (checked with :func:`validate_record`) as one durable line."""
        validate_record(record)
        self._out.append(record)

    def close(self):
        """Close the file; also done on leaving a ``with`` block."""
        self._out.close()
