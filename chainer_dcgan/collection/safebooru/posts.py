"""What a post is: the typed :class:`Post` and :class:`Tag` records parsed from the API's XML or JSON
(:func:`parse_posts`, :func:`parse_tags`), and the checks a post and its file pass before anything is
kept (:func:`check_post`, :func:`verify_image`)."""
import dataclasses
import json
import re
import warnings
import xml.etree.ElementTree as ElementTree
import xml.parsers.expat
from urllib.parse import unquote, urlsplit

from PIL import Image

from chainer_dcgan.collection.safebooru.errors import (ApiError, FileTooLarge, MalformedResponse, NotAnImage,
                                                       PostRejected, UnsafePost, UnsupportedType)
from chainer_dcgan.utils import jsonio

#: Extensions of the ``image`` field we download; videos and flash are skipped before any transfer.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp")
#: PIL format -> the extension the stored file gets (never the server's name).
FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
# The XML gives one letter, the JSON the word. Safebooru's ratings are general, sensitive,
# questionable and explicit, so its "s" is sensitive (on older Gelbooru 0.2 sites it meant safe).
_RATING_LETTERS = {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"}


def int_or_none(value):
    """An API field as an int; None when it is missing, empty or not a number."""
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError, OverflowError):  # OverflowError: int(1e999)
        return None


def post_id(value):
    """A post id from an API field: an integer >= 1, or its decimal digits as a string.

    Raises:
        WrongType (a ValueError): anything else (``"abc"``, ``1.5``, ``1e999``, a list, ``true``).
    """
    if isinstance(value, str) and value.isdigit() and value.isascii():
        value = int(value)
    return jsonio.expect(value, "positive", "id")


@dataclasses.dataclass
class Post:
    """One safebooru post.

    ``tags`` is a list of tag strings; ``md5`` is the file's MD5 (``hash`` in JSON, ``md5`` in XML);
    ``image`` is the server's file name and ``directory`` its folder (both untrusted).
    """

    id: int
    md5: str
    image: str
    directory: str
    width: int
    height: int
    rating: str
    tags: list
    source: str = ""
    score: int = None
    file_url: str = ""

    @classmethod
    def from_json(cls, obj):
        """From one object of the JSON array (typed fields)."""
        if not isinstance(obj, dict) or "id" not in obj:
            raise MalformedResponse("JSON post without an id: {!r}".format(obj)[:200])
        try:
            id_ = post_id(obj["id"])
            for key in ("image", "hash", "md5", "tags", "source", "file_url", "rating"):
                jsonio.expect(obj.get(key), "str", "field {!r}".format(key), optional=True)
        except jsonio.WrongType as e:
            raise MalformedResponse("JSON post: {}".format(e)) from None
        image = obj.get("image") or ""
        directory = str(obj.get("directory") if obj.get("directory") is not None else "")
        return cls(
            id=id_, md5=(obj.get("hash") or obj.get("md5") or "").lower(), image=image,
            directory=directory, width=int_or_none(obj.get("width")) or 0,
            height=int_or_none(obj.get("height")) or 0, rating=normalize_rating(obj.get("rating")),
            tags=(obj.get("tags") or "").split(), source=obj.get("source") or "",
            score=int_or_none(obj.get("score")), file_url=obj.get("file_url") or "")

    @classmethod
    def from_xml(cls, attrs):
        """From the attributes of one ``<post .../>`` (every value a string)."""
        try:
            post_id(attrs.get("id"))
        except jsonio.WrongType:
            raise MalformedResponse("XML post without a numeric id: {!r}".format(dict(attrs))[:200]) from None
        file_url = attrs.get("file_url", "")
        # XML has no image/directory attributes: they are the last two parts of file_url.
        parts = file_url.split("?")[0].rstrip("/").split("/")
        image = attrs.get("image") or (parts[-1] if file_url else "")
        directory = attrs.get("directory") or (parts[-2] if len(parts) >= 2 else "")
        return cls(
            id=int(attrs["id"]), md5=(attrs.get("md5") or attrs.get("hash") or "").lower(), image=image,
            directory=directory, width=int_or_none(attrs.get("width")) or 0,
            height=int_or_none(attrs.get("height")) or 0, rating=normalize_rating(attrs.get("rating")),
            tags=attrs.get("tags", "").split(), source=attrs.get("source", ""),
            score=int_or_none(attrs.get("score")), file_url=file_url)


def normalize_rating(rating):
    """``"g"``/``"general"``/``"Safe"`` -> ``"general"``/``"safe"``: one spelling per rating."""
    rating = str(rating or "").strip().lower()
    return _RATING_LETTERS.get(rating, rating)


class _PrologEnd(Exception):
    pass


def _xml_root(body, url, what, not_xml="is not XML"):
    """Parse XML ``body`` (bytes) with ElementTree, after refusing a document type declaration: the API
    never sends one, and one could declare entities that expand into stored tags (or into gigabytes).

    Raises:
        MalformedResponse: a ``<!DOCTYPE``, or not XML.
    """
    prolog = xml.parsers.expat.ParserCreate()

    def doctype(*args):
        raise MalformedResponse("{} declares a DTD (<!DOCTYPE ...>), which could define entities; "
                                "refused".format(what), url)

    def root(*args):
        raise _PrologEnd  # a DTD can only come before the root element: nothing more to look at

    prolog.StartDoctypeDeclHandler = doctype
    prolog.EntityDeclHandler = doctype
    prolog.StartElementHandler = root
    try:
        prolog.Parse(body, True)
    except (_PrologEnd, xml.parsers.expat.ExpatError):
        pass  # ElementTree names what is wrong
    try:
        return ElementTree.fromstring(body)
    except ElementTree.ParseError as e:
        raise MalformedResponse("{} {} ({}): {!r}".format(what, not_xml, e, body[:200]), url) from None


@dataclasses.dataclass
class Page:
    """One answer of the listing: ``posts``; ``count`` and ``offset`` (XML only, else None)."""

    posts: list
    count: int = None
    offset: int = None


def parse_posts(body, url=None):
    """Parse a listing body (bytes or str, XML or JSON) into a :class:`Page`.

    Raises:
        ApiError: the body is ``<response success="false" reason=...>``.
        MalformedResponse: anything else that is not a listing.
    """
    if isinstance(body, bytes):
        body = body.decode("utf-8", errors="replace")
    text = body.strip()
    if not text:
        return Page([])  # the JSON API has been seen to answer nothing at all for no results
    if text[0] == "[":
        try:
            items = jsonio.loads(text)
        except json.JSONDecodeError as e:
            raise MalformedResponse("listing is not valid JSON ({})".format(e.msg), url) from None
        return Page([Post.from_json(item) for item in items])
    if text[0] == "{":
        raise MalformedResponse("listing is a JSON object, not an array: {}".format(text[:200]), url)
    root = _xml_root(text.encode("utf-8"), url, "listing", "is neither JSON nor XML")
    if root.tag == "response":
        if root.get("success", "").lower() == "false":
            raise ApiError(root.get("reason") or root.text or "unknown reason", url)
        raise MalformedResponse("unexpected <response> without success=false", url)
    if root.tag != "posts":
        raise MalformedResponse("unexpected XML root <{}>".format(root.tag), url)
    posts = [Post.from_xml(child.attrib) for child in root if child.tag == "post"]
    return Page(posts, int_or_none(root.get("count")), int_or_none(root.get("offset")))


@dataclasses.dataclass
class Tag:
    """One entry of the tag list: ``count`` posts carry it; ``type`` 0 general, 1 artist, 3
    copyright, 4 character, 5 metadata."""

    id: int
    name: str
    count: int
    type: int = 0
    ambiguous: bool = False


def parse_tags(body, url=None):
    """Parse a tag-list body (``<tags type="array"><tag .../></tags>``) into a list of :class:`Tag`.

    Raises:
        ApiError: the body is ``<response success="false" reason=...>``.
        MalformedResponse: anything else that is not a tag list.
    """
    if isinstance(body, str):
        body = body.encode("utf-8")
    root = _xml_root(body.strip(), url, "tag list")
    if root.tag == "response" and root.get("success", "").lower() == "false":
        raise ApiError(root.get("reason") or root.text or "unknown reason", url)
    if root.tag != "tags":
        raise MalformedResponse("unexpected XML root <{}> for a tag list".format(root.tag), url)
    tags = []
    for child in root:
        if child.tag != "tag":
            continue
        if int_or_none(child.get("id")) is None or not child.get("name"):
            raise MalformedResponse("tag without a numeric id or a name: {!r}".format(dict(child.attrib))[:200], url)
        tags.append(Tag(id=int(child.get("id")), name=child.get("name"), count=int_or_none(child.get("count")) or 0,
                        type=int_or_none(child.get("type")) or 0,
                        ambiguous=child.get("ambiguous", "").lower() == "true"))
    return tags


def check_post(post):
    """Refuse a post whose MD5 or file name could be a path, or whose type we do not keep."""
    if not _MD5_RE.match(post.md5 or ""):
        raise UnsafePost("MD5 {!r} is not 32 hex digits".format(post.md5), post.id)
    name = post.image
    if (not name or "/" in name or "\\" in name or name in (".", "..") or "\x00" in name
            or not re.match(r"^[\w.\-]+$", name) or not re.match(r"^[\w\-]*$", str(post.directory))):
        raise UnsafePost("file name {!r} in folder {!r} is not a plain name".format(
            name, post.directory), post.id)
    if post.file_url:
        path = unquote(urlsplit(post.file_url).path)
        segments = path.split("/")[1:]
        if not path.startswith("/") or any(s in ("", ".", "..") or "\\" in s for s in segments):
            raise UnsafePost("file_url path {!r} is not a plain path".format(path), post.id)
    if not name.lower().endswith(IMAGE_EXTENSIONS):
        raise UnsupportedType("{!r} is not one of {}".format(name, " ".join(IMAGE_EXTENSIONS)), post.id)


def verify_image(path, post_id=None, max_pixels=Image.MAX_IMAGE_PIXELS or 89478485):
    """Decode the file fully; return the extension for its format.

    Raises:
        FileTooLarge: more than ``max_pixels`` pixels (checked from the header, before decoding).
        NotAnImage / UnsupportedType
    """
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as img:
                if img.width * img.height > max_pixels:
                    raise FileTooLarge("{}x{} pixels over the cap of {}".format(
                        img.width, img.height, max_pixels), post_id)
                fmt = img.format
                img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as e:
        raise FileTooLarge(str(e), post_id) from None
    except PostRejected:
        raise
    except Exception as e:  # PIL raises many types for broken data
        raise NotAnImage("does not decode as an image ({}: {})".format(type(e).__name__, e), post_id) from None
    if fmt not in FORMAT_EXTENSIONS:
        raise UnsupportedType("image format {} is not one of {}".format(fmt, sorted(FORMAT_EXTENSIONS)), post_id)
    return FORMAT_EXTENSIONS[fmt]
