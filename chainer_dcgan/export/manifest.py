"""The types of an export's ``demo.json``, checked where it is read (:func:`check_manifest`).

The page (``web/demo.js``) and :func:`chainer_dcgan.export.read_demo_manifest` trust these fields;
a hand-edited or hostile ``demo.json`` with another type in one of them is refused, naming the field.
"""
from chainer_dcgan.utils import jsonio

__all__ = ["check_manifest"]

#: The largest z and image a manifest may declare (the page allocates grids of them).
MAX_Z_DIM = 4096
MAX_IMAGE_SIZE = 1024


def _plain_name(value, what):
    """A file name inside the export folder: no folder part, not ``.``/``..``."""
    jsonio.expect(value, "name", what)
    if "/" in value or "\\" in value or value in (".", "..") or "\x00" in value:
        raise jsonio.WrongType("{} must be a file name inside the export, got {!r}".format(what, value[:40]))
    return value


def check_manifest(manifest):
    """Check the fields of a ``demo.json`` document that its readers use; returns it.

    Raises:
        jsonio.WrongType (a ValueError): naming the first field of the wrong type or out of range.
    """
    jsonio.expect(manifest, "object", "the document")
    models = jsonio.expect(manifest.get("models"), "object", "'models'")
    if not models:
        raise jsonio.WrongType("'models' must name at least one model")
    for key, entry in models.items():
        where = "'models'[{!r}]".format(key[:40])
        jsonio.expect(entry, "object", where)
        _plain_name(entry.get("file"), where + "['file']")
        jsonio.expect(entry.get("dtype"), "str", where + "['dtype']", optional=True)
    default = jsonio.expect(manifest.get("default_model"), "name", "'default_model'")
    if default not in models:
        raise jsonio.WrongType("'default_model' {!r} is not one of 'models'".format(default[:40]))
    _plain_name(manifest.get("tags"), "'tags'")
    for key, cap in (("z_dim", MAX_Z_DIM), ("image_size", MAX_IMAGE_SIZE)):
        value = jsonio.expect(manifest.get(key), "positive", repr(key))
        if value > cap:
            raise jsonio.WrongType("{!r} must be at most {}, got {}".format(key, cap, value))
    jsonio.expect(manifest.get("tag_count", 0), "count", "'tag_count'")
    first_z = jsonio.expect(manifest.get("first_z"), "numbers", "'first_z'", optional=True)
    if first_z is not None and len(first_z) != manifest["z_dim"]:
        raise jsonio.WrongType("'first_z' has {} numbers, 'z_dim' is {}".format(len(first_z), manifest["z_dim"]))
    encoder = jsonio.expect(manifest.get("encoder"), "object", "'encoder'", optional=True)
    if encoder is not None:
        _plain_name(encoder.get("file"), "'encoder'['file']")
    conditional = jsonio.expect(manifest.get("conditional"), "object", "'conditional'", optional=True)
    if conditional is not None:
        jsonio.expect(conditional.get("tags"), "strings", "'conditional'['tags']")
    return manifest
