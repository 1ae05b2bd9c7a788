"""A faithful local safebooru: the Gelbooru 0.2 post API over a folder of images, with faults.

It answers ``GET /index.php?page=dapi&s=post&q=index`` with ``limit`` (capped at 1000), ``pid``,
``tags`` (AND, ``-tag``, ``id:<N``/``id:>N``/``id:N``, ``rating:X``, ``sort:id:asc``) and
``json=1``, in the site's two shapes (XML ``<posts count offset>`` with string attributes, served
as ``text/xml; charset=utf-8``; JSON a bare array with typed fields), refuses deep paging
(``limit * pid`` past ``max_offset``) with the site's ``<response success="false" .../>`` (XML
even for ``json=1``), answers the tag list ``page=dapi&s=tag&q=index`` (XML ``<tags>`` with
counts) and serves files at ``/images/{directory}/{image}``, JPEG thumbnails (at most 150 px) at
``/thumbnails/{directory}/thumbnail_{stem}.jpg`` and samples (850 px wide, for wider images) at
``/samples/{directory}/sample_{stem}.jpg``. Field values and layout follow the examples in
``../shared/data/safebooru_api/`` (see ``docs/data.rst`` for each).

Faults are injected on request (:class:`Fault`): 429 with Retry-After, 503, a connection reset
mid-body, a truncated body, a wrong MD5 (corrupted bytes), an API-error answer and an empty page.

    with FakeSafebooru(posts) as server:        # 127.0.0.1, an ephemeral port
        client = SafebooruClient(server.url, delay=0)

``tools/fake_safebooru.py`` is the command line.
"""
import collections
import dataclasses
import datetime
import hashlib
import http.server
import io
import json
import os
import re
import socket
import struct
import threading
import time
import xml.sax.saxutils
from urllib.parse import parse_qs, unquote, urlsplit

import numpy
from PIL import Image

from chainer_dcgan.collection.safebooru import MAX_LIMIT
from chainer_dcgan.datasets.synthetic import draw_face, face_random_state
from chainer_dcgan.utils import jsonio

DEEP_PAGING_REASON = "Search error: API limited due to abuse."
XML_TYPE = "text/xml; charset=utf-8"  # the declaration says UTF-8; so must the header, or clients guess Latin-1
JSON_TYPE = "application/json"
PREVIEW_SIDE = 150  # thumbnails fit in 150x150 (2048x1402 -> 150x103 in the reference)
SAMPLE_WIDTH = 850  # images wider than this have an 850 px wide sample (2048x1402 -> 850x582)
TAG_LIMIT = 100  # the tag list's default page size
#: Tag types of the tag list: 0 general, 1 artist, 3 copyright, 4 character, 5 metadata.
TAG_TYPES = {"general": 0, "artist": 1, "copyright": 3, "character": 4, "metadata": 5}
_EPOCH = 1420070400  # 2015-01-01 UTC: posts without a date are dated an hour apart from here, by id
_DAYS = ("Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun")
_MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")
_CONTENT_TYPES = {".jpg": "image/jpeg", ".jpeg": "image/jpeg", ".png": "image/png", ".gif": "image/gif",
                  ".webp": "image/webp"}

#: Fault kinds and what each does to the answer.
FAULT_KINDS = {
    "rate_limit": "HTTP 429 with Retry-After",
    "unavailable": "HTTP 503",
    "reset": "headers and half the body, then a TCP reset",
    "truncate": "the full Content-Length but half the body, then a clean close",
    "bad_md5": "image bytes with one byte changed, so the MD5 does not match (images only)",
    "api_error": "HTTP 200 <response success=\"false\" reason=...> (listings only)",
    "empty_page": "an empty page of posts (listings only)",
}


@dataclasses.dataclass
class Fault:
    """One injected fault.

    Args:
        kind (str): one of :data:`FAULT_KINDS`.
        target (str): ``"api"``, ``"image"`` or ``"any"``; the default is ``"api"`` for
            ``api_error``/``empty_page``, ``"image"`` for ``bad_md5`` and ``"any"`` otherwise.
        times (int or None): how many requests it hits; None for every one.
        skip (int): matching requests let through before it starts.
        post_id (int or None): only that post's image (image faults).
        retry_after (int): the Retry-After of ``rate_limit``, seconds.
        reason (str): the reason of ``api_error``.
    """

    kind: str
    target: str = None
    times: int = 1
    skip: int = 0
    post_id: int = None
    retry_after: int = 1
    reason: str = "search down"
    hits: int = 0
    seen: int = 0

    def __post_init__(self):
        if self.kind not in FAULT_KINDS:
            raise ValueError("unknown fault {!r}; choose from {}".format(self.kind, ", ".join(FAULT_KINDS)))
        if self.target is None:
            self.target = {"api_error": "api", "empty_page": "api", "bad_md5": "image"}.get(self.kind, "any")
        if self.target not in ("api", "image", "any"):
            raise ValueError("fault target must be api, image or any, got {!r}".format(self.target))

    @classmethod
    def parse(cls, text):
        """``"KIND[:key=value,...]"``, e.g. ``"rate_limit:times=2,retry_after=1"`` (``times=all``)."""
        kind, _, rest = text.partition(":")
        kwargs = {}
        for item in filter(None, rest.split(",")):
            key, eq, value = item.partition("=")
            if not eq or key not in ("target", "times", "skip", "post_id", "retry_after", "reason"):
                raise ValueError("bad fault option {!r} in {!r}".format(item, text))
            if key in ("target", "reason"):
                kwargs[key] = value
            elif key == "times" and value in ("all", "none", ""):
                kwargs[key] = None
            else:
                kwargs[key] = int(value)
        return cls(kind.strip(), **kwargs)


@dataclasses.dataclass
class ServedPost:
    """One post of the local site. ``data`` holds the file's bytes; ``path`` is read when absent."""

    id: int
    tags: list
    path: str = None
    data: bytes = None
    rating: str = "general"
    source: str = ""
    score: int = None       # safebooru keeps no scores: JSON null, XML ""
    image: str = None       # the served file name; defaults to sha1(data) + extension, as the site
    directory: str = None   # defaults to id // 1000
    md5: str = None         # what the API reports; defaults to the real MD5
    width: int = None
    height: int = None
    boxes: list = None      # face boxes [x, y, w, h] where known (synthetic scenes); not served
    created: int = None     # upload time, Unix seconds; defaults to _EPOCH + id hours
    change: int = None      # last change, Unix seconds; defaults to created
    owner: str = "danbooru"  # the uploader's name (safebooru's mirror bot in the reference)

    def __post_init__(self):
        if self.data is None:
            if self.path is None:
                raise ValueError("ServedPost {}: give data or path".format(self.id))
            with open(self.path, "rb") as f:
                self.data = f.read()
        ext = os.path.splitext(self.path or "")[1].lower()
        if self.width is None or self.height is None or (self.image is None and ext not in _CONTENT_TYPES):
            with Image.open(io.BytesIO(self.data)) as img:
                self.width, self.height = img.size
                ext = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}.get(img.format, ext)
        if self.image is None:
            self.image = hashlib.sha1(self.data).hexdigest() + (ext or ".jpg")
        if self.directory is None:
            self.directory = str(self.id // 1000)
        if self.md5 is None:
            self.md5 = hashlib.md5(self.data).hexdigest()
        if self.created is None:
            self.created = _EPOCH + 3600 * self.id
        if self.change is None:
            self.change = self.created
        self.tags = list(self.tags)

    @property
    def stem(self):
        return os.path.splitext(self.image)[0]

    @property
    def has_sample(self):
        return self.width > SAMPLE_WIDTH

    def preview_size(self):
        """``(width, height)`` of the thumbnail: the image scaled to fit ``PREVIEW_SIDE`` (never up)."""
        return _fit(self.width, self.height, PREVIEW_SIDE / float(max(self.width, self.height)))

    def sample_size(self):
        """``(width, height)`` of the sample (the image's own size when it has none)."""
        if not self.has_sample:
            return self.width, self.height
        return _fit(self.width, self.height, SAMPLE_WIDTH / float(self.width))


def _fit(width, height, scale):
    scale = min(scale, 1.0)
    return max(1, int(round(width * scale))), max(1, int(round(height * scale)))


def created_at(seconds, utc_offset_minutes=0):
    """``"Fri Mar 18 03:02:02 +0100 2022"``: the XML's date format (English names, whatever the locale)."""
    tz = datetime.timezone(datetime.timedelta(minutes=utc_offset_minutes))
    t = datetime.datetime.fromtimestamp(seconds, tz)
    sign, minutes = ("-" if utc_offset_minutes < 0 else "+"), abs(utc_offset_minutes)
    return "{} {} {:02d} {:02d}:{:02d}:{:02d} {}{:02d}{:02d} {}".format(
        _DAYS[t.weekday()], _MONTHS[t.month - 1], t.day, t.hour, t.minute, t.second, sign, minutes // 60,
        minutes % 60, t.year)


@dataclasses.dataclass
class ServedTag:
    """One entry of the tag list: ``count`` is the number of posts carrying it."""

    id: int
    name: str
    count: int
    type: int = 0
    ambiguous: bool = False


@dataclasses.dataclass
class ServedRequest:
    """What the server saw: ``path`` (unquoted), ``query`` (as ``parse_qs`` gives) and ``headers``."""

    path: str
    query: dict
    headers: dict

    @property
    def is_image(self):
        return self.path.startswith("/images/")


def posts_from_folder(folder):
    """Posts for every image in ``folder``.

    With ``folder/posts.jsonl`` (what ``tools/scrape_safebooru.py`` writes) its ids, tags,
    ratings and sources are used; otherwise the images, sorted by name, get ids 1, 2, ... and the
    words of their file names as tags (``sylvie_blue.png`` -> ``sylvie blue``).
    """
    folder = os.fspath(folder)
    posts_file = os.path.join(folder, "posts.jsonl")
    posts = []
    if os.path.exists(posts_file):
        with open(posts_file, encoding="utf-8") as f:
            for lineno, line in enumerate(f, 1):
                if not line.strip() or not line.endswith("\n"):
                    continue
                rec = jsonio.loads(line)
                path = os.path.normpath(os.path.join(folder, rec["file"]))
                if not path.startswith(os.path.abspath(folder) + os.sep) and not path.startswith(folder + os.sep):
                    raise ValueError("{}:{}: file {!r} is outside the folder".format(posts_file, lineno, rec["file"]))
                posts.append(ServedPost(id=int(rec["id"]), tags=rec.get("tags", []), path=path,
                                        rating=rec.get("rating") or "general", source=rec.get("source") or "",
                                        score=rec.get("score")))
        return posts
    names = sorted(n for n in os.listdir(folder)
                   if n.lower().endswith(tuple(_CONTENT_TYPES)) and os.path.isfile(os.path.join(folder, n)))
    for i, name in enumerate(names, 1):
        tags = os.path.splitext(name)[0].lower().replace("-", "_").split("_")
        posts.append(ServedPost(id=i, tags=[t for t in tags if t], path=os.path.join(folder, name)))
    if not posts:
        raise ValueError("{}: no images (.jpg .png .gif .webp) and no posts.jsonl".format(folder))
    return posts


def synthetic_posts(n, seed=0, scene_size=(240, 320), start_id=1):
    """``n`` JPEG scenes, each with 1-3 faces of the embedded dataset pasted at random places and scales.

    The faces come from :func:`chainer_dcgan.datasets.synthetic.draw_face`; a scene's tags are
    ``1girl solo`` (one face) or ``multiple_girls``, plus the union of its faces' tags. Seeded.
    Each post's ``boxes`` holds its faces' ``[x, y, w, h]`` (the API does not serve them).

    Args:
        scene_size (tuple): ``(height, width)`` of the scenes, each side >= 200.
    """
    import cv2

    height, width = scene_size
    if min(height, width) < 200:
        raise ValueError("scene_size sides must be >= 200, got {}".format(scene_size))
    rs = numpy.random.RandomState(seed)
    posts = []
    for i in range(n):
        scene = numpy.empty((height, width, 3), numpy.uint8)
        scene[:] = rs.randint(0, 256, size=3)
        tags, boxes = set(), []
        for k in range(rs.randint(1, 4)):
            face, face_tags = draw_face(face_random_state(seed, i * 3 + k))
            side = int(rs.randint(64, 161))
            x, y = int(rs.randint(0, width - side + 1)), int(rs.randint(0, height - side + 1))
            scene[y:y + side, x:x + side] = cv2.resize(face, (side, side), interpolation=cv2.INTER_CUBIC)
            tags.update(face_tags)
            boxes.append([x, y, side, side])
        tags.update(["1girl", "solo"] if len(boxes) == 1 else ["multiple_girls"])
        buf = io.BytesIO()
        Image.fromarray(scene).save(buf, "JPEG", quality=92)
        posts.append(ServedPost(id=start_id + i, tags=sorted(tags), data=buf.getvalue(), width=width, height=height,
                                source="synthetic:{}:{}".format(seed, i), boxes=boxes))
    return posts


def _matches(post, words):
    for word in words:
        negate = word.startswith("-")
        if negate:
            word = word[1:]
        if word.startswith("id:"):
            op, value = word[3:], None
            for prefix in ("<=", ">=", "<", ">", "="):
                if op.startswith(prefix):
                    op, value = prefix, op[len(prefix):]
                    break
            if value is None:
                op, value = "=", op
            try:
                n = int(value)
            except ValueError:
                return False
            ok = {"<": post.id < n, ">": post.id > n, "<=": post.id <= n, ">=": post.id >= n, "=": post.id == n}[op]
        elif word.startswith("rating:"):
            want = word[len("rating:"):].lower()
            ok = post.rating == want or post.rating[:1] == want[:1]
        else:
            ok = word in post.tags
        if ok == negate:
            return False
    return True


def search(posts, tags):
    """Posts matching a ``tags`` query, in the site's order (id descending unless ``sort:id:asc``)."""
    words = tags.split()
    ascending = "sort:id:asc" in words
    words = [w for w in words if not w.startswith("sort:")]
    found = [p for p in posts if _matches(p, words)]
    found.sort(key=lambda p: p.id, reverse=not ascending)
    return found


def _xml_attr(value):
    return xml.sax.saxutils.quoteattr(str(value))


class FakeSafebooru:
    """A threaded HTTP server on ``host`` (127.0.0.1) imitating safebooru's post and tag API.

    Args:
        posts (list of ServedPost)
        port (int): 0 picks a free port.
        faults (list of Fault or str): see :class:`Fault`; more can be added with :meth:`add_fault`.
        max_offset (int): ``limit * pid`` beyond this is refused as the site does (200,000).
        chunk_delay (float): seconds slept between 64 KiB chunks of an image (slow links, kill tests).
        tag_types (dict): tag name -> type of the tag list (:data:`TAG_TYPES` values; default 0, general).
        utc_offset_minutes (int): the time zone of ``created_at`` (the reference shows +0100 and +0000).
    """

    def __init__(self, posts, host="127.0.0.1", port=0, faults=(), max_offset=200000, chunk_delay=0.0,
                 tag_types=None, utc_offset_minutes=0):
        self.posts = sorted(posts, key=lambda p: p.id)
        self.by_path = {}  # URL path -> (post, "image" | "preview" | "sample")
        for p in self.posts:
            self.by_path["/images/{}/{}".format(p.directory, p.image)] = (p, "image")
            self.by_path["/thumbnails/{}/thumbnail_{}.jpg".format(p.directory, p.stem)] = (p, "preview")
            if p.has_sample:
                self.by_path["/samples/{}/sample_{}.jpg".format(p.directory, p.stem)] = (p, "sample")
        self._derived = {}  # (post id, kind) -> JPEG bytes, made on first request
        self.tags = self._tag_table(tag_types or {})
        self.utc_offset_minutes = int(utc_offset_minutes)
        self.faults = []
        self._lock = threading.Lock()
        for fault in faults:
            self.add_fault(fault)
        self.max_offset = max_offset
        self.chunk_delay = chunk_delay
        self.requests = []  # a ServedRequest for every request, for tests
        self._httpd = _Server((host, port), _Handler)
        self._httpd.site = self
        self._thread = None
        self._serving = False

    def _tag_table(self, tag_types):
        # Ids by first use (posts in id order), as a site that creates a tag with its first post.
        counts, ids = collections.Counter(), {}
        for post in self.posts:
            for tag in dict.fromkeys(post.tags):
                counts[tag] += 1
                ids.setdefault(tag, len(ids) + 1)
        return [ServedTag(id=ids[name], name=name, count=counts[name], type=int(tag_types.get(name, 0)))
                for name in ids]

    @property
    def url(self):
        host, port = self._httpd.server_address[:2]
        return "http://{}:{}".format(host, port)

    def add_fault(self, fault):
        with self._lock:
            self.faults.append(Fault.parse(fault) if isinstance(fault, str) else fault)

    def clear_faults(self):
        with self._lock:
            self.faults = []

    def start(self):
        self._thread = threading.Thread(target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05},
                                        daemon=True)
        self._thread.start()
        return self

    def serve_forever(self):
        """Serve in this thread until :meth:`stop` (from another thread) or KeyboardInterrupt."""
        self._serving = True
        self._httpd.serve_forever(poll_interval=0.2)

    def stop(self):
        if self._thread is not None or self._serving:
            self._httpd.shutdown()
        self._httpd.server_close()
        if self._thread is not None:
            self._thread.join(timeout=5)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()

    def _take_fault(self, target, post_id=None):
        with self._lock:
            for fault in self.faults:
                if fault.target not in (target, "any"):
                    continue
                if fault.post_id is not None and fault.post_id != post_id:
                    continue
                if target == "api" and fault.kind == "bad_md5":
                    continue
                if target == "image" and fault.kind in ("api_error", "empty_page"):
                    continue
                if fault.times is not None and fault.hits >= fault.times:
                    continue
                fault.seen += 1
                if fault.seen <= fault.skip:
                    continue
                fault.hits += 1
                return fault
        return None

    # -- the API -------------------------------------------------------------------------------

    def listing(self, query):
        """``(body, content_type)`` for an API query dict (values are lists, as parse_qs gives)."""
        def arg(name, default=""):
            return query.get(name, [default])[0]

        if (arg("page"), arg("q")) == ("dapi", "index") and arg("s") == "tag":
            return self.tag_listing(query)
        if (arg("page"), arg("s"), arg("q")) != ("dapi", "post", "index"):
            return error_xml("unsupported request"), XML_TYPE
        limit = min(max(_int_arg(arg("limit"), 100), 0), MAX_LIMIT)
        pid = max(_int_arg(arg("pid"), 0), 0)
        if limit * pid > self.max_offset:
            return error_xml(DEEP_PAGING_REASON), XML_TYPE  # XML even when JSON was asked, as the site
        tags = arg("tags")
        if arg("id"):
            tags += " id:" + arg("id")
        found = search(self.posts, tags)
        page = found[pid * limit:(pid + 1) * limit]
        return self.render(page, len(found), pid * limit, arg("json") == "1")

    def tag_listing(self, query):
        """``(body, content_type)`` of ``page=dapi&s=tag&q=index``: XML ``<tags type="array">`` (also for
        ``json=1``, as safebooru does).

        Filters: ``id``, ``after_id`` (ids above), ``name``, ``names`` (space separated),
        ``name_pattern`` (SQL LIKE: ``%`` any run, ``_`` one character); ``orderby`` ``count`` (the
        default), ``name`` or ``id``/``date``, ``order`` ``desc`` (the default) or ``asc``; ``limit``
        (default 100, at most 1000) and ``pid``.
        """
        def arg(name, default=""):
            return query.get(name, [default])[0]

        tags = self.tags
        if arg("id"):
            tags = [t for t in tags if t.id == _int_arg(arg("id"), -1)]
        if arg("after_id"):
            tags = [t for t in tags if t.id > _int_arg(arg("after_id"), 0)]
        if arg("name"):
            tags = [t for t in tags if t.name == arg("name")]
        if arg("names"):
            wanted = set(arg("names").split())
            tags = [t for t in tags if t.name in wanted]
        if arg("name_pattern"):
            pattern = like_pattern(arg("name_pattern"))
            tags = [t for t in tags if pattern.fullmatch(t.name)]
        orderby = arg("orderby", "count").lower()
        key = {"count": lambda t: (t.count, -t.id), "name": lambda t: t.name}.get(orderby, lambda t: t.id)
        tags = sorted(tags, key=key, reverse=arg("order", "desc").lower() != "asc")
        limit = min(max(_int_arg(arg("limit"), TAG_LIMIT), 0), MAX_LIMIT)
        pid = max(_int_arg(arg("pid"), 0), 0)
        lines = ['<?xml version="1.0" encoding="UTF-8"?>', '<tags type="array">']
        lines += ['<tag type="{}" ambiguous="{}" count="{}" name={} id="{}"/>'.format(
            t.type, "true" if t.ambiguous else "false", t.count, _xml_attr(t.name), t.id)
            for t in tags[pid * limit:(pid + 1) * limit]]
        lines.append("</tags>")
        return "\n".join(lines), XML_TYPE

    def render(self, page, count, offset, as_json):
        if as_json:
            return json.dumps([self._json_post(p) for p in page]), JSON_TYPE
        lines = ['<?xml version="1.0" encoding="UTF-8"?>',
                 '<posts count="{}" offset="{}">'.format(count, offset)]
        lines += ["<post {}/>".format(" ".join("{}={}".format(k, _xml_attr(v)) for k, v in self._xml_post(p)))
                  for p in page]
        lines.append("</posts>")
        return "\n".join(lines), XML_TYPE

    def _urls(self, p):
        """``(file_url, sample_url, preview_url)``; without a sample, sample_url is the file's."""
        file_url = "{}/images/{}/{}".format(self.url, p.directory, p.image)
        sample_url = ("{}/samples/{}/sample_{}.jpg".format(self.url, p.directory, p.stem) if p.has_sample
                      else file_url)
        return file_url, sample_url, "{}/thumbnails/{}/thumbnail_{}.jpg".format(self.url, p.directory, p.stem)

    def _json_post(self, p):
        file_url, sample_url, preview_url = self._urls(p)
        sample_width, sample_height = p.sample_size()
        return {"preview_url": preview_url, "sample_url": sample_url, "file_url": file_url,
                "directory": int(p.directory) if p.directory.isdigit() else p.directory, "hash": p.md5,
                "width": p.width, "height": p.height, "id": p.id, "image": p.image, "change": p.change,
                "owner": p.owner, "parent_id": 0, "rating": p.rating, "sample": p.has_sample,
                "sample_height": sample_height, "sample_width": sample_width, "score": p.score,
                "tags": " ".join(p.tags), "source": p.source, "status": "active", "has_notes": False,
                "comment_count": 0}

    def _xml_post(self, p):
        file_url, sample_url, preview_url = self._urls(p)
        sample_width, sample_height = p.sample_size()
        preview_width, preview_height = p.preview_size()
        return [("height", p.height), ("score", "" if p.score is None else p.score), ("file_url", file_url),
                ("parent_id", ""), ("sample_url", sample_url), ("sample_width", sample_width),
                ("sample_height", sample_height), ("preview_url", preview_url), ("rating", p.rating[:1]),
                ("tags", " {} ".format(" ".join(p.tags))), ("id", p.id), ("width", p.width), ("change", p.change),
                ("md5", p.md5), ("creator_id", 1), ("has_children", "false"),
                ("created_at", created_at(p.created, self.utc_offset_minutes)), ("status", "active"),
                ("source", p.source), ("has_notes", "false"), ("has_comments", "false"),
                ("preview_width", preview_width), ("preview_height", preview_height)]

    def file_bytes(self, post, kind):
        """The bytes served for ``kind`` ``"image"`` (the post's own), ``"preview"`` or ``"sample"`` (JPEG)."""
        if kind == "image":
            return post.data
        with self._lock:
            cached = self._derived.get((post.id, kind))
        if cached is None:
            size = post.preview_size() if kind == "preview" else post.sample_size()
            with Image.open(io.BytesIO(post.data)) as img:
                small = img.convert("RGB").resize(size, Image.BILINEAR)
            buf = io.BytesIO()
            small.save(buf, "JPEG", quality=90)
            cached = buf.getvalue()
            with self._lock:
                self._derived[(post.id, kind)] = cached
        return cached


def _int_arg(text, default):
    try:
        return int(text)
    except (TypeError, ValueError):
        return default


def like_pattern(pattern):
    """A compiled regex for an SQL LIKE pattern (``%``: any run of characters, ``_``: one)."""
    return re.compile("".join(".*" if c == "%" else "." if c == "_" else re.escape(c) for c in pattern), re.S)


def error_xml(reason):
    return ('<?xml version="1.0" encoding="UTF-8"?>\n<response success="false" reason={}/>'
            .format(_xml_attr(reason)))


class _Server(http.server.ThreadingHTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def handle_error(self, request, client_address):
        pass  # clients that hang up (and our own resets) are expected here


class _Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"  # keep-alive, as requests.Session expects
    disable_nagle_algorithm = True  # headers and body go out in separate writes
    server_version = "FakeSafebooru/1.0"

    def log_message(self, *args):
        pass

    def do_GET(self):
        site = self.server.site
        parts = urlsplit(self.path)
        path = unquote(parts.path)
        query = parse_qs(parts.query, keep_blank_values=True)
        with site._lock:
            site.requests.append(ServedRequest(path, query, dict(self.headers)))
        if path in ("/index.php", "/"):
            fault = site._take_fault("api")
            if fault is not None and fault.kind == "api_error":
                return self._send(200, error_xml(fault.reason).encode("utf-8"), XML_TYPE)
            if fault is not None and fault.kind == "empty_page":
                as_json = query.get("json", [""])[0] == "1"
                body, ctype = site.render([], 0, 0, as_json)
                return self._send(200, body.encode(), ctype)
            body, ctype = site.listing(query)
            return self._send(200, body.encode("utf-8"), ctype, fault)
        post, kind = site.by_path.get(path, (None, None))
        if post is None:
            return self._send(404, b"not found", "text/plain")
        fault = site._take_fault("image", post.id)
        data = site.file_bytes(post, kind)
        if fault is not None and fault.kind == "bad_md5":
            data = bytearray(data)
            data[len(data) // 2] ^= 0xFF
            data, fault = bytes(data), None
        ctype = _CONTENT_TYPES.get(os.path.splitext(path)[1].lower(), "application/octet-stream")
        self._send(200, data, ctype, fault, site.chunk_delay)

    def _send(self, status, body, ctype, fault=None, chunk_delay=0.0):
        if fault is not None and fault.kind in ("rate_limit", "unavailable"):
            status = 429 if fault.kind == "rate_limit" else 503
            body = b"Too Many Requests" if status == 429 else b"Service Unavailable"
            self.send_response(status)
            if status == 429:
                self.send_header("Retry-After", str(fault.retry_after))
            self.send_header("Content-Type", "text/plain")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)
            return
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        if fault is not None and fault.kind in ("reset", "truncate"):
            self.wfile.write(body[:len(body) // 2])
            self.wfile.flush()
            self.close_connection = True
            if fault.kind == "reset":
                # SO_LINGER 0: close() sends RST instead of FIN.
                self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
                self.connection.close()
            return
        step = 1 << 16
        for start in range(0, len(body), step):
            if chunk_delay and start:
                time.sleep(chunk_delay)
            self.wfile.write(body[start:start + step])
