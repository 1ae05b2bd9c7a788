"""The one image <-> array conversion, and sample-grid tiling.

Conventions used across the package:

* an *image* is ``uint8`` ``(H, W, 3)`` RGB, as PIL and PNG files hold it;
* an *array* is ``float32`` ``(3, H, W)`` with ``x = (pixel - 128) / 128``, so values lie in
  ``[-1, 127/128]``: the original's scaling. The generator has no tanh, so its output may leave
  that range; :func:`to_image` clips it back.
"""
import io
import os

import numpy
from PIL import Image

from chainer_dcgan.utils.atomic import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


def read_image(source, size=None):
    """Decode a PNG/JPEG/... file (path, bytes or file object) into RGB ``uint8 (H, W, 3)``.

    Grayscale, RGBA (composited on white), palette and CMYK images are converted to RGB; 16-bit
    grayscale is scaled to 8 bits (``round(v * 255 / 65535)``), not clipped. With
    ``size`` (int), the image is resized to ``(size, size)`` with area (box) filtering when its
    shape differs.

    Raises:
        OSError / PIL.UnidentifiedImageError: the data is not a decodable image (any decoder failure
            is an OSError).
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    with _open_decoded(source) as img:
        if img.mode in _WIDE_GREY_MODES:
            img = Image.fromarray(_grey16_to_8(numpy.asarray(img))).convert("RGB")
        elif img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, (255, 255, 255))
            img.paste(rgba, mask=rgba.getchannel("A"))
        else:
            img = img.convert("RGB")
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.BOX)
        return numpy.asarray(img, dtype=numpy.uint8)


def _open_decoded(source):
    """``Image.open(source)`` with its pixels loaded; what a decoder raises becomes an OSError.

    PIL opens some files whose pixels it cannot decode (a DDS texture in a format it lacks raises
    NotImplementedError, other plugins SyntaxError, struct.error, IndexError...): every reader
    handles OSError, so one foreign file is skipped, never the end of a run.
    """
    img = None
    try:
        img = Image.open(source)
        img.load()
        return img
    except BaseException as e:
        if img is not None:
            img.close()
        if isinstance(e, (OSError, MemoryError, Image.DecompressionBombError)) or not isinstance(e, Exception):
            raise
        raise OSError("cannot decode {}: {}: {}".format(
            getattr(img, "format", None) or "the image", type(e).__name__, e)) from None


_WIDE_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N")


def _grey16_to_8(values):
    """16-bit grey levels (PIL's ``I``/``I;16`` modes hold 0..65535) -> ``uint8``, by scaling."""
    values = numpy.clip(numpy.asarray(values, dtype=numpy.float64), 0, 65535)
    return numpy.rint(values * (255.0 / 65535.0)).astype(numpy.uint8)


def to_array(image):
    """``uint8 (H, W, 3)`` image -> ``float32 (3, H, W)`` array, ``(pixel - 128) / 128``."""
    return (numpy.asarray(image, dtype=numpy.float32).transpose(2, 0, 1) - 128.0) / 128.0


def to_image(array):
    """``float (3, H, W)`` array (NumPy) -> ``uint8 (H, W, 3)`` image, clipping to ``[-1, 1]``.

    Pixel = ``round(clip(x, -1, 1) * 128 + 128)`` clipped to ``[0, 255]``: the inverse of
    :func:`to_array` and the mapping the browser demo uses.
    """
    x = numpy.clip(numpy.asarray(array, dtype=numpy.float32), -1.0, 1.0)
    return numpy.clip(numpy.rint(x * 128.0 + 128.0), 0, 255).astype(numpy.uint8).transpose(1, 2, 0)


def tile(arrays, rows, cols, pad=0):
    """Tile ``float (N, 3, H, W)`` arrays (N <= rows * cols) into one ``uint8`` image.

    Returns:
        ``uint8 (rows * (H + pad) - pad, cols * (W + pad) - pad, 3)``; empty cells stay black.
    """
    arrays = numpy.asarray(arrays)
    n, _, h, w = arrays.shape
    if n > rows * cols:
        raise ValueError("tile: {} images do not fit a {}x{} grid".format(n, rows, cols))
    out = numpy.zeros((rows * (h + pad) - pad, cols * (w + pad) - pad, 3), dtype=numpy.uint8)
    for i in range(n):
        r, c = divmod(i, cols)
        out[r * (h + pad):r * (h + pad) + h, c * (w + pad):c * (w + pad) + w] = to_image(arrays[i])
    return out


def image_format(path):
    """The PIL format a file name's extension asks for (``"PNG"``, ``"JPEG"``, ``"GIF"``, ``"TIFF"``...).

    Raises:
        ValueError: naming the file, when the extension is missing or not an image format PIL writes.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    format = Image.registered_extensions().get(ext)
    if format is None or format not in Image.SAVE:
        raise ValueError("{}: the extension {!r} is not an image format that can be written (use .png, .jpg, "
                         ".webp, .gif, .bmp or .tiff)".format(path, ext or "(none)"))
    return format


def save_image(path, image, format=None, colors=None):
    """Write a ``uint8 (H, W, 3)`` image atomically in the format its extension says (see
    :func:`image_format`), or ``format``.

    Args:
        colors (int or None): 2..256 writes an adaptive palette of that many colours (median cut,
            no dithering; a third to a half of a PNG's bytes for a grid of faces), for PNG and GIF.
    """
    format = format or image_format(path)
    picture = Image.fromarray(numpy.asarray(image, dtype=numpy.uint8))
    if colors is not None:
        if not 2 <= colors <= 256 or format not in ("PNG", "GIF"):
            raise ValueError("{}: a palette of {} colours needs 2..256 colours and a .png or .gif file".format(
                path, colors))
        picture = picture.quantize(colors=colors, method=Image.Quantize.MEDIANCUT, dither=Image.Dither.NONE)
    with atomic_write(path) as f:
        picture.save(f, format=format, **({"optimize": True} if colors is not None else {}))


def is_image_file(name):
    """Whether the file name ends with one of ``IMAGE_EXTENSIONS`` (any case)."""
    return name.lower().endswith(IMAGE_EXTENSIONS)


def save_animation(path, frames, duration_ms=80, loop=0):
    """Write ``uint8 (H, W, 3)`` frames as an animated GIF or WebP (by extension), atomically.

    Args:
        duration_ms (int): display time of each frame.
        loop (int): 0 loops forever.
    """
    ext = os.path.splitext(os.fspath(path))[1].lower()
    if ext not in (".gif", ".webp"):
        raise ValueError("{}: an animation must end in .gif or .webp".format(path))
    if not len(frames):
        raise ValueError("{}: no frames to write".format(path))
    images = [Image.fromarray(numpy.asarray(f, dtype=numpy.uint8)) for f in frames]
    options = {"lossless": True} if ext == ".webp" else {"optimize": False, "disposal": 1}
    with atomic_write(path) as f:
        images[0].save(f, format="WEBP" if ext == ".webp" else "GIF", save_all=True, append_images=images[1:],
                       duration=int(duration_ms), loop=int(loop), **options)
