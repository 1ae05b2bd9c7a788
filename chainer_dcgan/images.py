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

from chainer_dcgan.atomic import atomic_write

IMAGE_EXTENSIONS = (".png", ".jpg", ".jpeg", ".gif", ".bmp", ".webp")


def read_image(source, size=None):
    """Decode a PNG/JPEG/... file (path, bytes or file object) into RGB ``uint8 (H, W, 3)``.

    Grayscale, RGBA (composited on white), palette and CMYK images are converted to RGB. With
    ``size`` (int), the image is resized to ``(size, size)`` with area (box) filtering when its
    shape differs.

    Raises:
        OSError / PIL.UnidentifiedImageError: the data is not a decodable image.
    """
    if isinstance(source, (bytes, bytearray, memoryview)):
        source = io.BytesIO(source)
    with Image.open(source) as img:
        img.load()
        if img.mode in ("RGBA", "LA") or (img.mode == "P" and "transparency" in img.info):
            rgba = img.convert("RGBA")
            img = Image.new("RGB", rgba.size, (255, 255, 255))
            img.paste(rgba, mask=rgba.getchannel("A"))
        else:
            img = img.convert("RGB")
        if size is not None and img.size != (size, size):
            img = img.resize((size, size), Image.BOX)
        return numpy.asarray(img, dtype=numpy.uint8)


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


def save_image(path, image, format=None):
    """Write a ``uint8 (H, W, 3)`` image atomically; the format follows the extension."""
    format = format or {".jpg": "JPEG", ".jpeg": "JPEG", ".webp": "WEBP"}.get(
        os.path.splitext(os.fspath(path))[1].lower(), "PNG")
    with atomic_write(path) as f:
        Image.fromarray(numpy.asarray(image, dtype=numpy.uint8)).save(f, format=format)


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
