"""Procedural anime-style faces with safebooru-style tags: the default dataset when there is no real one.

Every face is drawn with PIL at twice the final size and box-filtered down to 96x96 (or the
``size`` asked: the drawing is scaled, never the pixels, so edges stay one pixel sharp at 128 or
256 px), so edges are anti-aliased. A face is a pure function of its random state: :func:`face_random_state` turns a
``(seed, index)`` pair into one, so :class:`SyntheticFaces` gives random access without storing anything.

Tags (:data:`TAGS`) follow safebooru's vocabulary, and each one changes pixels in a way a small CNN can
see: hair colour covers a large area, hair length decides whether the lower corners of the image hold
hair (``short_hair``: cut at the jaw; ``long_hair``: tips at the shoulders; ``very_long_hair``: wider,
off the bottom of the image), ``twintails``/``ponytail`` hang as tied tails beside the head, and the
background tags name a plain background (an untagged face has a gradient background with circles).
Eye colour tags are left out when the face has ``closed_eyes``, as taggers do.
"""
import functools
import math
import os

import chainer  # chainer_dcgan/__init__.py has installed the compatibility shims by now
import numpy
from PIL import Image, ImageDraw

from chainer_dcgan.datasets.manifest import ManifestWriter, manifest_path, read_manifest
from chainer_dcgan.models.hparams import IMAGE_SIZE
from chainer_dcgan.utils.images import save_image, to_array

# Palettes (RGB). Each hair colour is far from the others in hue or lightness, so the tag is learnable.
_HAIR_COLORS = {
    "blonde": (246, 216, 112),
    "black": (44, 38, 52),
    "brown": (124, 76, 42),
    "red": (206, 44, 46),
    "blue": (58, 104, 222),
    "pink": (246, 146, 194),
    "silver": (186, 192, 208),
    "green": (60, 168, 84),
    "purple": (136, 74, 192),
}
_EYE_COLORS = {
    "blue": (40, 92, 230),
    "red": (210, 28, 40),
    "green": (34, 164, 62),
    "brown": (128, 74, 34),
    "purple": (138, 56, 200),
    "yellow": (230, 186, 24),
    "aqua": (24, 196, 206),
}
_BACKGROUNDS = {  # plain backgrounds; an untagged face gets a gradient with circles instead
    "white": (252, 252, 252),
    "blue": (150, 192, 238),
    "pink": (246, 190, 212),
    "yellow": (250, 236, 158),
    "green": (178, 226, 176),
    "grey": (176, 176, 184),
}
_HAIR_LENGTHS = ("short_hair", "long_hair", "very_long_hair")
_HAIR_STYLES = ("twintails", "ponytail")
_HEADWEAR = ("hat", "animal_ears")
_FLAGS = ("smile", "open_mouth", "closed_eyes", "blush", "glasses")

#: Every tag a synthetic face can carry, grouped: hair colour, hair length, hairstyle, eye colour,
#: expression, accessories, background.
TAGS = (tuple(c + "_hair" for c in _HAIR_COLORS) + _HAIR_LENGTHS + _HAIR_STYLES
        + tuple(c + "_eyes" for c in _EYE_COLORS) + _FLAGS + _HEADWEAR
        + ("simple_background",) + tuple(c + "_background" for c in _BACKGROUNDS))

_SKINS = ((255, 230, 214), (252, 222, 200), (255, 236, 226), (246, 212, 188))
_CLOTHES = ((40, 52, 96), (250, 250, 250), (200, 40, 60), (60, 60, 64), (90, 150, 210), (240, 200, 90),
            (120, 80, 150), (70, 120, 80))
_HATS = ((40, 40, 48), (200, 40, 50), (250, 250, 246), (60, 90, 170), (110, 70, 40), (240, 170, 200))
_FRAMES = ((30, 26, 30), (150, 30, 40), (90, 60, 40), (40, 50, 110))
_RIBBONS = ((220, 30, 50), (250, 250, 250), (40, 40, 60), (250, 210, 60), (80, 160, 240))

# Fixed counts of uniforms drawn per face, so the drawing does not depend on which tags were required:
# the same random state with a different ``require`` gives the same face apart from those tags.
_N_ATTRIBUTE_DRAWS = 16
_N_RENDER_DRAWS = 112
_SUPER = 2  # draw at 2x, then box-filter down
_CANVAS = IMAGE_SIZE * _SUPER  # the drawing's own units are pixels of this 96 px canvas


@functools.lru_cache(maxsize=None)
def _gradient(canvas):
    return Image.linear_gradient("L").resize((canvas, canvas))


def face_random_state(seed, index):
    """The random state that draws face ``index`` of dataset ``seed`` (both ints >= 0).

    Independent streams for every ``(seed, index)``: a ``SeedSequence`` seeds a PCG64 bit generator,
    which sets up several times faster than MT19937 with its 624-word state.
    """
    return numpy.random.RandomState(numpy.random.PCG64(numpy.random.SeedSequence([int(seed), int(index)])))


def draw_face(random_state, require=(), size=IMAGE_SIZE):
    """Draw one anime-style face.

    Args:
        random_state (numpy.random.RandomState): the only source of randomness; it advances by a
            fixed number of draws.
        require (iterable of str): tags from :data:`TAGS` the face must have; the rest is drawn as
            usual, from the same random numbers (so only the required attributes change). Required
            ``twintails``/``ponytail`` make short hair long; a required eye colour opens closed eyes;
            ``simple_background`` picks a plain background.
        size (int): side of the image in pixels (>= 8); the same random state gives the same face,
            drawn at that resolution.

    Returns:
        tuple: ``(image, tags)``: ``uint8 (size, size, 3)`` RGB image, and its tags, a list of str in
        :data:`TAGS` order.

    Raises:
        ValueError: ``require`` holds an unknown tag or tags that cannot go together.
    """
    attributes = _sample_attributes(random_state, require)
    image = _render(attributes, _Uniforms(random_state.random_sample(_N_RENDER_DRAWS)),
                    _integer("draw_face", "size", size, 8))
    return image, _tags_of(attributes)


def face_tags(random_state, require=()):
    """The tags :func:`draw_face` would give for this random state, without drawing (list of str)."""
    return _tags_of(_sample_attributes(random_state, require))


class SyntheticFaces(chainer.dataset.DatasetMixin):
    """``n`` synthetic faces as a Chainer dataset; face ``i`` is a pure function of ``(seed, i)``.

    ``dataset[i]`` (``get_example(i)``) is a ``float32 (3, S, S)`` array in ``[-1, 127/128]``
    (:func:`chainer_dcgan.utils.images.to_array`); :meth:`image` gives the ``uint8 (S, S, 3)`` image and
    :meth:`tags` its tags. ``S`` is ``size`` (96 by default).

    Args:
        n (int): number of faces, > 0.
        seed (int): dataset seed, >= 0.
        cache (bool): keep each face in memory once drawn (27 KiB each: 20,000 faces take
            550 MB; 3 S^2 bytes each at other sizes), so training does not redraw them each epoch;
            faces are drawn on first use.
        size (int): side of the faces in pixels, drawn at that resolution (see :func:`draw_face`).
    """

    def __init__(self, n, seed=0, cache=False, size=IMAGE_SIZE):
        self.n = _integer("SyntheticFaces", "n", n, 1)
        self.seed = _integer("SyntheticFaces", "seed", seed, 0)
        self.size = _integer("SyntheticFaces", "size", size, 8)
        self._images = numpy.empty((self.n, self.size, self.size, 3), dtype=numpy.uint8) if cache else None
        self._drawn = numpy.zeros(self.n, dtype=bool) if cache else None

    def __len__(self):
        return self.n

    def _check(self, i):
        if not -self.n <= i < self.n:
            raise IndexError("SyntheticFaces: index {} out of range for {} faces".format(i, self.n))
        return int(i) % self.n

    def image(self, i):
        """Face ``i`` as a ``uint8 (size, size, 3)`` image."""
        i = self._check(i)
        if self._images is None:
            return draw_face(face_random_state(self.seed, i), size=self.size)[0]
        if not self._drawn[i]:
            self._images[i] = draw_face(face_random_state(self.seed, i), size=self.size)[0]
            self._drawn[i] = True
        return self._images[i].copy()

    def get_example(self, i):
        """Face ``i`` as a ``float32 (3, size, size)`` array, ``(pixel - 128) / 128``."""
        return to_array(self.image(i))

    def tags(self, i):
        """Tags of face ``i`` (list of str in :data:`TAGS` order); cheap, nothing is drawn."""
        return face_tags(face_random_state(self.seed, self._check(i)))


def image_path(index):
    """Relative path of face ``index`` inside a written dataset: ``images/NNN/NNNNNNN.png``, 1000 a folder."""
    return "images/{:03d}/{:07d}.png".format(index // 1000, index)


def write_dataset(out_dir, n, seed=0, workers=1, callback=None):
    """Write faces ``0..n-1`` of dataset ``seed`` as PNGs plus ``out_dir/manifest.jsonl``.

    Each manifest record is ``{"file": "images/000/0000012.png", "tags": [...], "seed": seed,
    "index": 12, "source": "synthetic"}``. Images are written atomically before their record, so an
    interrupted run can be resumed by calling again with the same ``seed``: faces already in the
    manifest are skipped. Records are appended in index order.

    Args:
        out_dir (str): dataset folder, created if missing.
        n (int): number of faces, > 0.
        seed (int): dataset seed, >= 0.
        workers (int): processes drawing and encoding in parallel (1: in this process).
        callback (callable): called as ``callback(done, n)`` after each face is recorded, ``done``
            counting faces already present from an earlier run.

    Returns:
        int: the number of faces written by this call.

    Raises:
        ValueError: bad ``n``/``seed``/``workers``, or ``out_dir`` holds a manifest made with
            another seed or with records that are not from this generator.
    """
    n = _integer("write_dataset", "n", n, 1)
    seed = _integer("write_dataset", "seed", seed, 0)
    workers = _integer("write_dataset", "workers", workers, 1)
    out_dir = os.fspath(out_dir)
    done = set()
    if os.path.exists(manifest_path(out_dir)):
        for k, record in enumerate(read_manifest(out_dir), 1):
            if record.get("source") != "synthetic" or not isinstance(record.get("index"), int):
                raise ValueError("write_dataset: {} line {} is not a synthetic-face record; choose an "
                                 "empty folder".format(manifest_path(out_dir), k))
            if record.get("seed") != seed:
                raise ValueError("write_dataset: {} was written with seed {!r}, not {}; use that seed to resume "
                                 "or choose another folder".format(manifest_path(out_dir), record.get("seed"), seed))
            done.add(record["index"])
    todo = [i for i in range(n) if i not in done]
    count = len(done.intersection(range(n)))
    written = 0
    jobs = [(out_dir, seed, i) for i in todo]
    with ManifestWriter(out_dir) as manifest:
        if workers == 1 or len(todo) < 2:
            results = map(_write_one, jobs)
            pool = None
        else:
            import multiprocessing

            pool = multiprocessing.get_context().Pool(workers)
            results = pool.imap(_write_one, jobs, chunksize=16)
        try:
            for record in results:
                manifest.write(record)
                written += 1
                if callback is not None:
                    callback(count + written, n)
        finally:
            if pool is not None:
                pool.terminate()
                pool.join()
    return written


def _integer(where, name, value, low):
    if isinstance(value, (bool, numpy.bool_)) or not isinstance(value, (int, numpy.integer)) or value < low:
        raise ValueError("{}: {} must be an integer >= {}, got {!r}".format(where, name, low, value))
    return int(value)


def _write_one(job):
    out_dir, seed, index = job
    image, tags = draw_face(face_random_state(seed, index))
    rel = image_path(index)
    save_image(os.path.join(out_dir, rel), image)
    return {"file": rel, "tags": tags, "seed": seed, "index": index, "source": "synthetic"}


# --- attributes -------------------------------------------------------------------------------------

class _Uniforms:
    """Hands out pre-drawn uniforms in order (the fixed budget keeps random streams aligned)."""

    def __init__(self, values):
        self._values = values.tolist()
        self._next = 0

    def __call__(self, low=0.0, high=1.0):
        value = self._values[self._next]
        self._next += 1
        return low + (high - low) * value

    def seek(self, position):
        """Continue from draw ``position``: sections start at fixed draws whatever came before."""
        assert self._next <= position, (self._next, position)
        self._next = position

    def pick(self, options):
        return options[min(int(self() * len(options)), len(options) - 1)]

    def chance(self, p):
        return self() < p


_TAG_FIELDS = {}
_TAG_FIELDS.update({c + "_hair": ("hair_color", c) for c in _HAIR_COLORS})
_TAG_FIELDS.update({t: ("hair_length", t) for t in _HAIR_LENGTHS})
_TAG_FIELDS.update({t: ("hair_style", t) for t in _HAIR_STYLES})
_TAG_FIELDS.update({c + "_eyes": ("eye_color", c) for c in _EYE_COLORS})
_TAG_FIELDS.update({t: (t, True) for t in _FLAGS})
_TAG_FIELDS.update({t: ("headwear", t) for t in _HEADWEAR})
_TAG_FIELDS.update({c + "_background": ("background", c) for c in _BACKGROUNDS})
_TAG_FIELDS["simple_background"] = ("simple", True)


def _sample_attributes(random_state, require=()):
    u = _Uniforms(random_state.random_sample(_N_ATTRIBUTE_DRAWS))
    a = {
        "hair_color": u.pick(tuple(_HAIR_COLORS)),
        "hair_length": u.pick(("short_hair",) * 7 + ("long_hair",) * 8 + ("very_long_hair",) * 5),
        "hair_style": u.pick((None,) * 13 + ("twintails",) * 4 + ("ponytail",) * 3),
        "eye_color": u.pick(tuple(_EYE_COLORS)),
        "smile": u.chance(0.45),
        "open_mouth": u.chance(0.3),
        "closed_eyes": u.chance(0.12),
        "blush": u.chance(0.3),
        "glasses": u.chance(0.14),
        "headwear": u.pick((None,) * 14 + ("hat",) * 3 + ("animal_ears",) * 3),
        "background": u.pick(("white",) * 6 + tuple(_BACKGROUNDS)[1:] + (None,) * 9),
    }
    plain = u.pick(tuple(_BACKGROUNDS))  # used when simple_background is required of a busy face
    required = {}
    for tag in (require,) if isinstance(require, str) else require:
        if tag not in _TAG_FIELDS:
            raise ValueError("draw_face: unknown tag {!r} in require; known tags are in TAGS".format(tag))
        field, value = _TAG_FIELDS[tag]
        if field in required and required[field] != value:
            raise ValueError("draw_face: required tags {!r} and {!r} cannot go together".format(
                _tag_for(field, required[field]), tag))
        required[field] = value
    if "hair_style" in required and required.get("hair_length") == "short_hair":
        raise ValueError("draw_face: {!r} needs long_hair or very_long_hair, not short_hair".format(
            _tag_for("hair_style", required["hair_style"])))
    if "eye_color" in required and required.get("closed_eyes"):
        raise ValueError("draw_face: an eye colour cannot be seen with closed_eyes")
    simple = required.pop("simple", False)
    a.update(required)
    if a["hair_length"] == "short_hair":
        if "hair_style" in required:
            a["hair_length"] = "long_hair"
        else:
            a["hair_style"] = None  # tails are long by construction
    if "eye_color" in required:
        a["closed_eyes"] = False
    if simple and a["background"] is None:
        a["background"] = plain
    return a


def _tag_for(field, value):
    return next(t for t, fv in _TAG_FIELDS.items() if fv == (field, value))


def _tags_of(a):
    tags = {a["hair_color"] + "_hair", a["hair_length"]}
    if a["hair_style"]:
        tags.add(a["hair_style"])
    if not a["closed_eyes"]:
        tags.add(a["eye_color"] + "_eyes")
    tags.update(f for f in _FLAGS if a[f])
    if a["headwear"]:
        tags.add(a["headwear"])
    if a["background"]:
        tags.update(("simple_background", a["background"] + "_background"))
    return [t for t in TAGS if t in tags]


# --- drawing ----------------------------------------------------------------------------------------

def _mix(c1, c2, t):
    return tuple(int(round(a + (b - a) * t)) for a, b in zip(c1, c2))


def _jitter(color, u, amount):
    return tuple(max(0, min(255, int(c + u(-amount, amount)))) for c in color)


def _oval(x, y, rx, ry, n=24, start=0.0, end=360.0):
    """``n`` points on an ellipse (face units), from ``start`` to ``end`` degrees, clockwise on screen."""
    return [(x + rx * c, y + ry * s) for c, s in _unit_arc(n, start, end)]


@functools.lru_cache(maxsize=256)
def _unit_arc(n, start, end):
    step = (end - start) / (n if end - start >= 360.0 else n - 1)
    return tuple((math.cos(math.radians(start + k * step)), math.sin(math.radians(start + k * step)))
                 for k in range(n))


def _mirror(points):
    return [(-x, y) for x, y in points]


class _Pen:
    """Draws shapes given in face units (half-width 1, y down, origin mid-face) onto the 2x canvas.

    The pose (scale, centre, in-plane rotation) is applied to the points, so nothing is resampled.
    """

    def __init__(self, image, scale, cx, cy, angle):
        self.draw = ImageDraw.Draw(image)
        self.s = scale
        self.width = max(2, int(round(scale * 0.045)))  # outline width, pixels at 2x
        c, s = math.cos(math.radians(angle)) * scale, math.sin(math.radians(angle)) * scale
        self._m = (c, -s, s, c, cx, cy)

    def points(self, points):
        a, b, c, d, e, f = self._m
        return [(e + a * x + b * y, f + c * x + d * y) for x, y in points]

    def fill(self, points, color, outline=None, width=None):
        points = self.points(points)
        self.draw.polygon(points, fill=color)
        if outline is not None:  # a closed wide line: PIL's wide polygon outline costs a full-size mask
            self.draw.line(points + points[:1], fill=outline, width=self.width if width is None else width,
                           joint="curve")

    def line(self, points, color, width=None):
        self.draw.line(self.points(points), fill=color, width=self.width if width is None else width,
                       joint="curve" if len(points) > 2 else None)


def _render(a, u, size=IMAGE_SIZE):
    """Draw attributes ``a`` with layout uniforms ``u``; returns ``uint8 (size, size, 3)``."""
    canvas_size = size * _SUPER
    k = canvas_size / _CANVAS  # lengths below are in 96 px canvas pixels; the rest is in face units
    # Pose: face half-width in pixels at 2x, centre, in-plane rotation in degrees.
    s = u(41.0, 52.0) * k
    cx = canvas_size / 2 + u(-9.0, 9.0) * k
    cy = canvas_size * 0.49 + u(-8.0, 8.0) * k
    angle = u(-11.0, 11.0)
    flip = 1 if u.chance(0.5) else -1  # side of a ponytail, tilt of a hat
    hair = _jitter(_HAIR_COLORS[a["hair_color"]], u, 10)
    hair_dark = _mix(hair, (20, 10, 30), 0.35)
    skin = _jitter(u.pick(_SKINS), u, 4)
    skin_shadow = _mix(skin, (200, 120, 130), 0.35)
    skin_line = _mix(skin, (120, 50, 50), 0.55)
    clothes = u.pick(_CLOTHES)
    ribbon = u.pick(_RIBBONS)
    length = a["hair_length"]
    tied = a["hair_style"] is not None
    tip_y = {"short_hair": u(0.45, 0.7), "long_hair": u(1.45, 1.7), "very_long_hair": 3.4}[length]
    spread = {"short_hair": 0.0, "long_hair": u(0.15, 0.3), "very_long_hair": u(0.45, 0.6)}[length]

    u.seek(24)
    canvas = _background(a["background"], u, canvas_size)
    pen = _Pen(canvas, s, cx, cy, angle)
    lw = pen.width

    # 1. Hair behind the head: cranium, and the long back hair or tied tails.
    u.seek(58)
    pen.fill(_oval(0, -0.5, 1.32, 1.18, 40), hair, hair_dark)
    if tied or length == "short_hair":
        back = [(-1.32, -0.5), (-1.3, 0.35), (-1.1, 0.62), (1.1, 0.62), (1.3, 0.35), (1.32, -0.5)]
    else:
        w = 1.45 + spread
        back = [(-1.32, -0.6), (-1.42, 0.2), (-w, tip_y - 0.35)]
        steps = 7
        for k in range(steps + 1):
            back.append((-w + 2 * w * k / steps, tip_y - (0.0 if k % 2 else 0.3) + u(-0.05, 0.05)))
        back += [(w, tip_y - 0.35), (1.42, 0.2), (1.32, -0.6)]
    pen.fill(back, hair, hair_dark)
    if tied:
        for side in ((-1, 1) if a["hair_style"] == "twintails" else (flip,)):
            top = -1.15 if a["hair_style"] == "twintails" else -1.35
            w = 0.36 + spread * 0.5
            tail = [(0.95, top - 0.2), (1.35, top - 0.25), (1.75 + w, top + 0.5), (1.85 + w, tip_y - 0.6),
                    (1.6 + w * 0.5, tip_y), (1.55, tip_y - 0.4), (1.45, top + 0.9), (1.05, top + 0.35)]
            pen.fill(tail if side > 0 else _mirror(tail), hair, hair_dark)
            for k in range(2):  # strands
                x0 = 1.45 + 0.2 * k
                strand = [(x0, top + 0.5), (x0 + 0.25, tip_y * 0.6), (x0 + 0.1, tip_y - 0.3)]
                pen.line(strand if side > 0 else _mirror(strand), hair_dark)
            pen.fill(_oval(side * 1.12, top, 0.17, 0.17, 16), ribbon, _mix(ribbon, (0, 0, 0), 0.4))

    # 2. Animal ears (their base hides behind the bangs).
    if a["headwear"] == "animal_ears":
        inner = _mix(hair, (255, 170, 190), 0.6)
        for side in (-1, 1):
            ear = [(0.35, -1.45), (1.25, -1.2), (1.2, -2.2)]
            ear_in = [(0.62, -1.45), (1.1, -1.32), (1.12, -1.95)]
            if side < 0:
                ear, ear_in = _mirror(ear), _mirror(ear_in)
            pen.fill(ear, hair, hair_dark)
            pen.fill(ear_in, inner)

    # 3. Neck and shoulders.
    pen.fill([(-0.3, 0.8), (0.3, 0.8), (0.3, 2.4), (-0.3, 2.4)], skin)
    pen.fill([(-0.3, 1.0), (0.3, 1.0), (0.3, 1.35), (0, 1.5), (-0.3, 1.35)], skin_shadow)
    body = [(-0.3, 1.62), (-0.9, 1.8), (-1.7, 2.0), (-2.3, 2.5), (-2.6, 4.0), (2.6, 4.0), (2.3, 2.5),
            (1.7, 2.0), (0.9, 1.8), (0.3, 1.62)]
    pen.fill(body, clothes, _mix(clothes, (0, 0, 0), 0.5))
    pen.fill([(-0.3, 1.62), (0.3, 1.62), (0, 2.15)], skin)

    # 4. Face: round cheeks to a pointed chin.
    face = [(-1.0, -1.0), (-1.0, 0.25), (-0.95, 0.55), (-0.72, 0.95), (-0.32, 1.22), (0.0, 1.3),
            (0.32, 1.22), (0.72, 0.95), (0.95, 0.55), (1.0, 0.25), (1.0, -1.0)]
    pen.fill(face, skin, skin_line)

    # 5. Bangs: the top of the cranium with a zigzag edge over the forehead, and its shadow.
    u.seek(66)
    spikes = int(u(4, 7.999))
    edge = []
    for k in range(spikes + 1):
        x = 1.22 - 2.44 * k / spikes
        edge.append((x, u(-0.62, -0.48)))
        if k < spikes:
            edge.append((x - 1.22 / spikes + u(-0.06, 0.06), u(-0.3, -0.18)))
    shadow = [(max(-1.0, min(1.0, x)), y + 0.1) for x, y in edge]
    pen.fill(shadow + [(-1.0, -1.0), (1.0, -1.0)], skin_shadow)
    pen.fill(_oval(0, -0.5, 1.32, 1.18, 21, 180, 360) + edge[::-1], hair, hair_dark)
    for k in range(1, 2 * spikes, 2):  # strand lines from the crown into each spike
        x, y = edge[k]
        pen.line([(x * 0.45, -1.35), (x * 0.9, (y - 0.6) / 2), (x, y + 0.04)], hair_dark)
    shine = _mix(hair, (255, 255, 255), 0.35)
    for start in (200, 236, 275, 310):  # the shine ring, broken by strands
        pen.line(_oval(0, -0.62, 1.05, 0.78, 5, start + u(0, 8), start + u(20, 28)), shine, int(s * 0.08))

    # 6. Side locks framing the face, down to the hair length (shorter with tails).
    u.seek(97)
    lock_y = u(0.5, 0.8)  # drawn either way, so the eyes below use the same draws
    if not tied and length != "short_hair":
        lock_y = tip_y
    for side in (-1, 1):
        lock = [(0.82, -0.75), (1.3, -0.6), (1.24, 0.2), (1.16 + spread * 0.6, lock_y - 0.3),
                (0.98, lock_y), (0.86, lock_y - 0.4), (0.8, 0.0)]
        pen.fill(lock if side > 0 else _mirror(lock), hair, hair_dark)
        strand = [(1.05, -0.5), (1.02, lock_y * 0.5), (1.0, lock_y - 0.15)]
        pen.line(strand if side > 0 else _mirror(strand), hair_dark)

    # 7. Eyes: big, with iris, pupil and two highlights; or closed arcs.
    ex, ey = u(0.4, 0.5), u(0.02, 0.12)
    er = u(0.9, 1.12)
    eye_dark = (40, 24, 30)
    white = (255, 255, 255)
    brow_y = ey - 0.42 * er
    iris = _jitter(_EYE_COLORS[a["eye_color"]], u, 8)
    for side in (-1, 1):
        x = side * ex
        pen.line([(x - side * 0.2, brow_y + 0.03), (x + side * 0.05, brow_y - 0.03), (x + side * 0.22, brow_y)],
                 hair_dark)
        if a["closed_eyes"]:
            bend = -0.1 if a["smile"] else 0.08  # ^ ^ when smiling, a gentle curve otherwise
            pen.line([(x - 0.26 * er, ey + 0.05), (x, ey + 0.05 + bend), (x + 0.26 * er, ey + 0.05)], eye_dark,
                     int(lw * 1.6))
            continue
        pen.fill(_oval(x, ey, 0.26 * er, 0.3 * er), white)
        pen.fill(_oval(x, ey + 0.03, 0.19 * er, 0.27 * er), _mix(iris, (0, 0, 0), 0.35))
        pen.fill(_oval(x, ey + 0.08, 0.15 * er, 0.2 * er), iris)
        pen.fill(_oval(x, ey + 0.2 * er, 0.1 * er, 0.07 * er, 16), _mix(iris, white, 0.45))
        pen.fill(_oval(x, ey + 0.05, 0.08 * er, 0.12 * er, 16), _mix(iris, (0, 0, 0), 0.7))
        pen.fill(_oval(x - side * 0.07 * er, ey - 0.07 * er, 0.07 * er, 0.07 * er, 12), white)
        pen.fill(_oval(x + side * 0.06 * er, ey + 0.14 * er, 0.035 * er, 0.035 * er, 8), white)
        lash = [(-0.3, -0.05), (-0.15, -0.27), (0.12, -0.3), (0.33, -0.14), (0.38, -0.04), (0.22, -0.2),
                (-0.12, -0.21), (-0.26, 0.0)]
        pen.fill([(x + side * dx * er, ey + dy * er) for dx, dy in lash], eye_dark)
        pen.line([(x - side * 0.12 * er, ey + 0.31 * er), (x + side * 0.14 * er, ey + 0.3 * er)], skin_line,
                 max(1, lw // 2))

    # 8. Blush, nose, mouth.
    u.seek(104)
    if a["blush"]:
        blush = _mix(skin, (245, 110, 130), 0.55)
        for side in (-1, 1):
            pen.fill(_oval(side * (ex + 0.08), ey + 0.42, 0.24, 0.09, 16), blush)
            for k in (-1, 0, 1):
                bx = side * (ex + 0.08) + 0.09 * k
                pen.line([(bx + 0.03, ey + 0.37), (bx - 0.03, ey + 0.47)], _mix(blush, (200, 40, 60), 0.5),
                         max(1, lw // 2))
    pen.line([(0.0, 0.5), (-0.03, 0.56)], skin_shadow)
    my = u(0.82, 0.92)
    mw = u(0.12, 0.2)
    mouth_line = (110, 40, 50)
    if a["open_mouth"]:
        inside, tongue = (150, 40, 56), (236, 120, 130)
        if a["smile"]:  # a "D": flat top, round bottom
            pen.fill(_oval(0, my - 0.05, mw * 1.5, 0.2, 13, 0, 180), inside, mouth_line)
            pen.fill(_oval(0, my + 0.11, mw * 0.9, 0.06, 9, 180, 360), tongue)
        else:
            pen.fill(_oval(0, my, mw * 0.8, 0.12, 16), inside, mouth_line)
            pen.fill(_oval(0, my + 0.07, mw * 0.5, 0.04, 9, 180, 360), tongue)
    elif a["smile"]:  # wider and bolder than the neutral mouth, so it survives the 96x96 scale
        pen.line(_oval(0, my - 0.14, mw * 1.7, 0.16, 9, 15, 165), mouth_line, int(lw * 1.4))
    else:
        pen.line([(-mw * 0.6, my), (mw * 0.6, my)], mouth_line)

    # 9. Glasses and hats go over everything.
    u.seek(106)
    if a["glasses"]:
        frame = u.pick(_FRAMES)
        fw = int(lw * 1.3)
        for side in (-1, 1):
            rim = _rounded_rect(side * ex, ey + 0.04, 0.34 * er, 0.3 * er, 0.12)
            pen.draw.line(pen.points(rim + rim[:1]), fill=frame, width=fw, joint="curve")
        pen.line([(-ex + 0.33 * er, ey), (ex - 0.33 * er, ey)], frame, fw)
    u.seek(107)
    if a["headwear"] == "hat":
        color = u.pick(_HATS)
        dark = _mix(color, (0, 0, 0), 0.45)
        band = ribbon if ribbon != color else _mix(color, (255, 255, 255), 0.5)
        if u.chance(0.5):  # beret
            pen.fill(_oval(flip * 0.25, -1.6, 1.45, 0.5, 32), color, dark)
            pen.fill(_oval(flip * 0.3, -2.1, 0.08, 0.08, 8), dark)
            pen.line([(-1.05, -1.25), (1.05, -1.25)], band, int(s * 0.12))
        else:  # witch hat
            pen.fill([(-0.9, -1.45), (0.9, -1.45), (flip * 0.7, -2.9)], color, dark)
            pen.fill(_oval(0, -1.4, 1.9, 0.28, 32), color, dark)
            pen.fill([(-0.88, -1.5), (0.88, -1.5), (0.8, -1.72), (-0.8, -1.72)], band)

    return numpy.asarray(canvas.reduce(_SUPER))  # a 2x2 box filter


def _rounded_rect(x, y, hw, hh, r):
    """Outline points of a rectangle with rounded corners (face units)."""
    points = []
    for (px, py), start in (((hw - r, hh - r), 0), ((-hw + r, hh - r), 90), ((-hw + r, -hh + r), 180),
                            ((hw - r, -hh + r), 270)):
        points += _oval(x + px, y + py, r, r, 4, start, start + 90)
    return points


def _background(name, u, canvas=_CANVAS):
    """The 2x canvas, ``canvas`` pixels square: a plain colour for a tagged background, else a gradient
    with soft circles."""
    if name is not None:
        return Image.new("RGB", (canvas, canvas), _jitter(_BACKGROUNDS[name], u, 4 if name == "white" else 12))
    k = canvas / _CANVAS
    top = tuple(int(u(40, 255)) for _ in range(3))
    bottom = _mix(top, tuple(int(u(0, 255)) for _ in range(3)), 0.7)
    image = Image.composite(Image.new("RGB", (canvas, canvas), bottom),
                            Image.new("RGB", (canvas, canvas), top), _gradient(canvas))
    d = ImageDraw.Draw(image, "RGBA")
    light = _mix(top, (255, 255, 255), 0.6)
    for _ in range(int(u(3, 8.999))):
        x, y, r = u(0, _CANVAS) * k, u(0, _CANVAS) * k, u(8, 40) * k
        d.ellipse([x - r, y - r, x + r, y + r], fill=light + (110,))
    return image


__all__ = ["TAGS", "draw_face", "face_tags", "face_random_state", "SyntheticFaces", "write_dataset", "image_path"]
