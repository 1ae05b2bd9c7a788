"""A polite safebooru (Gelbooru 0.2 API) client and a resumable, verified image store.

The public surface, smallest first:

* :class:`SafebooruClient`: one ``requests.Session`` with a descriptive User-Agent, a delay between
  requests, and retries with exponential backoff on connection errors, 5xx and 429 (honouring
  ``Retry-After``). :meth:`SafebooruClient.get_posts` fetches one page; :meth:`SafebooruClient.iter_posts`
  walks a whole search with ``id:<LAST_ID`` (the site refuses deep ``pid`` paging);
  :meth:`SafebooruClient.get_tags` lists tags with their post counts (to pick a vocabulary).
* :class:`Post`: one post, typed, parsed from the XML (every value a string) or the JSON shape.
* :class:`PostStore`: ``DIR/images/ab/<md5>.<ext>`` plus ``DIR/posts.jsonl``; each image is streamed
  to a temporary file, checked against the post's MD5, decoded, then renamed into place, and only
  then is its line appended (flushed and fsynced), so a kill at any moment leaves neither a partial
  file in place nor a duplicate line, and a rerun fetches only what is missing.
* :func:`scrape`: the loop the command line ``tools/scrape_safebooru.py`` runs.

Errors form one hierarchy under :class:`SafebooruError`; nothing here prints.
"""
import contextlib
import dataclasses
import email.utils
import hashlib
import json
import os
import re
import tempfile
import time
import warnings
import xml.etree.ElementTree as ElementTree
from urllib.parse import unquote, urljoin, urlsplit

import requests
from PIL import Image

from chainer_dcgan.utils import Closing, jsonio
from chainer_dcgan.utils.atomic import FolderLock, FolderLocked, JsonlAppender, drop_torn_tail, fsync_folder

DEFAULT_BASE_URL = "https://safebooru.org"
MAX_LIMIT = 1000  # the API's hard cap on posts per request
POSTS_NAME = "posts.jsonl"
IMAGES_DIR = "images"
PARTIAL_DIR = ".partial"

#: Extensions of the ``image`` field we download; videos and flash are skipped before any transfer.
IMAGE_EXTENSIONS = (".jpg", ".jpeg", ".png", ".gif", ".webp")
#: PIL format -> the extension the stored file gets (never the server's name).
_FORMAT_EXTENSIONS = {"JPEG": ".jpg", "PNG": ".png", "GIF": ".gif", "WEBP": ".webp"}
_MD5_RE = re.compile(r"^[0-9a-f]{32}$")
# The XML gives one letter, the JSON the word. Safebooru's ratings are general, sensitive,
# questionable and explicit, so its "s" is sensitive (on older Gelbooru 0.2 sites it meant safe).
_RATING_LETTERS = {"g": "general", "s": "sensitive", "q": "questionable", "e": "explicit"}


def _user_agent():
    from chainer_dcgan import __version__
    return "chainer-dcgan/{} (dataset scraper for a DCGAN; python-requests/{})".format(
        __version__, requests.__version__)


# --------------------------------------------------------------------------------------------
# Errors


class SafebooruError(Exception):
    """Base of every error raised here. ``url`` is the request that failed, when there was one."""

    def __init__(self, message, url=None):
        super().__init__(message)
        self.url = url


class ApiError(SafebooruError):
    """The API answered ``<response success="false" reason="..."/>`` (HTTP 200, even with ``json=1``)."""

    def __init__(self, reason, url=None):
        super().__init__("safebooru API error: {}".format(reason), url)
        self.reason = reason

    @property
    def transient(self):
        """"search down" and the like pass; "... limited/disabled due to abuse" (deep paging, a
        switched-off API) does not, so it is not retried."""
        return "abuse" not in self.reason.lower()


class HTTPStatusError(SafebooruError):
    """A non-2xx answer. ``status_code`` (int); ``retry_after`` (seconds or None)."""

    def __init__(self, status_code, url=None, retry_after=None):
        super().__init__("HTTP {} from {}".format(status_code, url), url)
        self.status_code = status_code
        self.retry_after = retry_after


class RateLimited(HTTPStatusError):
    """HTTP 429; ``retry_after`` is what the server asked us to wait, in seconds."""


class ServerError(HTTPStatusError):
    """HTTP 5xx."""


class NetworkError(SafebooruError):
    """The connection failed, was reset, timed out, or the body ended before its Content-Length."""


class MalformedResponse(SafebooruError):
    """A listing that is neither the XML nor the JSON shape of the API."""


class RetriesExhausted(SafebooruError):
    """Every attempt failed with a retryable error; ``last_error`` is the final one."""

    def __init__(self, what, attempts, last_error):
        super().__init__("{}: giving up after {} attempts; last error: {}".format(
            what, attempts, last_error), getattr(last_error, "url", None))
        self.attempts = attempts
        self.last_error = last_error


class PostRejected(SafebooruError):
    """A post that is skipped and nothing of it stored; ``post_id`` says which."""

    def __init__(self, message, post_id=None, url=None):
        super().__init__("post {}: {}".format(post_id, message), url)
        self.post_id = post_id


class UnsafePost(PostRejected):
    """The post's file name or MD5 could escape the store or is not a plain name (``../x.png``)."""


class UnsupportedType(PostRejected):
    """Not an image type we keep (video, flash, an unknown format)."""


class ChecksumMismatch(PostRejected):
    """The downloaded bytes do not have the post's MD5 (after the allowed re-downloads)."""


class FileTooLarge(PostRejected):
    """Over the per-file byte cap, or over PIL's decompression-bomb pixel limit."""


class NotAnImage(PostRejected):
    """The bytes do not decode as an image."""


class StoreLocked(SafebooruError, FolderLocked):
    """Another process is writing to the same store folder."""


_RETRYABLE = (RateLimited, ServerError, NetworkError, MalformedResponse)


# --------------------------------------------------------------------------------------------
# Posts


def _int_or_none(value):
    if value is None or value == "":
        return None
    try:
        return int(value)
    except (TypeError, ValueError):
        return None


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
        image = str(obj.get("image") or "")
        directory = str(obj.get("directory") if obj.get("directory") is not None else "")
        return cls(
            id=int(obj["id"]), md5=str(obj.get("hash") or obj.get("md5") or "").lower(), image=image,
            directory=directory, width=_int_or_none(obj.get("width")) or 0,
            height=_int_or_none(obj.get("height")) or 0, rating=normalize_rating(obj.get("rating")),
            tags=str(obj.get("tags") or "").split(), source=str(obj.get("source") or ""),
            score=_int_or_none(obj.get("score")), file_url=str(obj.get("file_url") or ""))

    @classmethod
    def from_xml(cls, attrs):
        """From the attributes of one ``<post .../>`` (every value a string)."""
        if _int_or_none(attrs.get("id")) is None:
            raise MalformedResponse("XML post without a numeric id: {!r}".format(dict(attrs))[:200])
        file_url = attrs.get("file_url", "")
        # XML has no image/directory attributes: they are the last two parts of file_url.
        parts = file_url.split("?")[0].rstrip("/").split("/")
        image = attrs.get("image") or (parts[-1] if file_url else "")
        directory = attrs.get("directory") or (parts[-2] if len(parts) >= 2 else "")
        return cls(
            id=int(attrs["id"]), md5=(attrs.get("md5") or attrs.get("hash") or "").lower(), image=image,
            directory=directory, width=_int_or_none(attrs.get("width")) or 0,
            height=_int_or_none(attrs.get("height")) or 0, rating=normalize_rating(attrs.get("rating")),
            tags=attrs.get("tags", "").split(), source=attrs.get("source", ""),
            score=_int_or_none(attrs.get("score")), file_url=file_url)


def normalize_rating(rating):
    """``"g"``/``"general"``/``"Safe"`` -> ``"general"``/``"safe"``: one spelling per rating."""
    rating = str(rating or "").strip().lower()
    return _RATING_LETTERS.get(rating, rating)


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
    try:
        root = ElementTree.fromstring(text.encode("utf-8"))
    except ElementTree.ParseError as e:
        raise MalformedResponse("listing is neither JSON nor XML ({}): {!r}".format(e, text[:200]), url) from None
    if root.tag == "response":
        if root.get("success", "").lower() == "false":
            raise ApiError(root.get("reason") or root.text or "unknown reason", url)
        raise MalformedResponse("unexpected <response> without success=false", url)
    if root.tag != "posts":
        raise MalformedResponse("unexpected XML root <{}>".format(root.tag), url)
    posts = [Post.from_xml(child.attrib) for child in root if child.tag == "post"]
    return Page(posts, _int_or_none(root.get("count")), _int_or_none(root.get("offset")))


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
    try:
        root = ElementTree.fromstring(body.strip())
    except ElementTree.ParseError as e:
        raise MalformedResponse("tag list is not XML ({}): {!r}".format(e, body[:200]), url) from None
    if root.tag == "response" and root.get("success", "").lower() == "false":
        raise ApiError(root.get("reason") or root.text or "unknown reason", url)
    if root.tag != "tags":
        raise MalformedResponse("unexpected XML root <{}> for a tag list".format(root.tag), url)
    tags = []
    for child in root:
        if child.tag != "tag":
            continue
        if _int_or_none(child.get("id")) is None or not child.get("name"):
            raise MalformedResponse("tag without a numeric id or a name: {!r}".format(dict(child.attrib))[:200], url)
        tags.append(Tag(id=int(child.get("id")), name=child.get("name"), count=_int_or_none(child.get("count")) or 0,
                        type=_int_or_none(child.get("type")) or 0,
                        ambiguous=child.get("ambiguous", "").lower() == "true"))
    return tags


def _parse_retry_after(value):
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    with contextlib.suppress(TypeError, ValueError):
        when = email.utils.parsedate_to_datetime(value)
        return max(0.0, when.timestamp() - time.time())
    return None


# --------------------------------------------------------------------------------------------
# Client


class SafebooruClient(Closing):
    """A polite client for one booru: one session, a delay between requests, retries.

    Args:
        base_url (str): the site root (``https://safebooru.org`` or a local imitation).
        delay (float): seconds between the start of consecutive requests (1 s for the real site;
            0 for a local server).
        retries (int): retries after the first attempt for connection errors, 5xx and 429.
        backoff (float): first retry waits ``backoff`` s, then doubling, capped at ``max_backoff``;
            a ``Retry-After`` from the server wins when longer (capped at ``max_retry_after``).
        timeout (float): seconds for connect and for each read.
        max_file_bytes (int): per-image byte cap.
        max_pixels (int): per-image pixel cap (PIL's decompression-bomb guard).
        redownloads (int): extra downloads of one image after a checksum mismatch.
        session (requests.Session): to share one; a new one by default.
        sleep (callable): ``sleep(seconds)``; tests pass a recorder.
    """

    def __init__(self, base_url=DEFAULT_BASE_URL, delay=1.0, retries=5, backoff=1.0, max_backoff=60.0,
                 max_retry_after=300.0, timeout=30.0, max_file_bytes=50 * 2 ** 20,
                 max_pixels=Image.MAX_IMAGE_PIXELS or 89478485, redownloads=2, user_agent=None,
                 session=None, sleep=time.sleep):
        if delay < 0 or retries < 0 or backoff < 0:
            raise ValueError("delay, retries and backoff must be >= 0")
        self.base_url = base_url.rstrip("/")
        self.delay = float(delay)
        self.retries = int(retries)
        self.backoff = float(backoff)
        self.max_backoff = float(max_backoff)
        self.max_retry_after = float(max_retry_after)
        self.timeout = timeout
        self.max_file_bytes = int(max_file_bytes)
        self.max_pixels = int(max_pixels)
        self.redownloads = int(redownloads)
        self.session = session or requests.Session()
        self.session.headers["User-Agent"] = user_agent or _user_agent()
        self._sleep = sleep
        self._last_request = None

    def close(self):
        self.session.close()

    # -- plumbing --------------------------------------------------------------------------

    def _wait_politely(self):
        now = time.monotonic()
        if self._last_request is not None and self.delay > 0:
            wait = self._last_request + self.delay - now
            if wait > 0:
                self._sleep(wait)
        self._last_request = time.monotonic()

    def _backoff_seconds(self, attempt, error):
        wait = min(self.max_backoff, self.backoff * 2 ** (attempt - 1))
        retry_after = getattr(error, "retry_after", None)
        if retry_after is not None:
            wait = max(wait, min(retry_after, self.max_retry_after))
        return wait

    def _with_retries(self, what, attempt_once):
        attempt = 0
        while True:
            attempt += 1
            self._wait_politely()
            try:
                return attempt_once()
            except (ApiError,) + _RETRYABLE as e:
                if isinstance(e, ApiError) and not e.transient:
                    raise
                if attempt > self.retries:
                    raise RetriesExhausted(what, attempt, e) from e
                wait = self._backoff_seconds(attempt, e)
                if wait > 0:
                    self._sleep(wait)

    def _get(self, url, params=None, stream=False):
        """One GET; a 429/5xx/other non-2xx becomes the matching named error."""
        try:
            response = self.session.get(url, params=params, stream=stream, timeout=self.timeout)
        except (requests.ConnectionError, requests.Timeout) as e:
            raise NetworkError("{}: {}".format(url, e), url) from e
        if response.status_code >= 300:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            cls = RateLimited if response.status_code == 429 else (
                ServerError if response.status_code >= 500 else HTTPStatusError)
            raise cls(response.status_code, response.url, retry_after)
        return response

    # -- listing ---------------------------------------------------------------------------

    def get_posts(self, tags="", limit=100, pid=0, json=False):
        """Fetch one page of a search (retrying transient failures).

        Args:
            tags (str or list): space-separated tags; ``-tag`` excludes; meta-tags (``id:<N``,
                ``rating:general``) pass through.
            limit (int): 1..1000 posts.
            pid (int): page number from 0; the site refuses ``limit * pid`` past about 200,000.
            json (bool): ask for the JSON shape (typed fields, no ``count``) instead of XML.

        Returns:
            Page
        Raises:
            ApiError: a lasting refusal (deep paging, API disabled); a transient one ("search
                down") is retried like a 503.
            RetriesExhausted, HTTPStatusError
        """
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise ValueError("limit must be in 1..{}, got {}".format(MAX_LIMIT, limit))
        if not isinstance(tags, str):
            tags = " ".join(tags)
        params = {"page": "dapi", "s": "post", "q": "index", "limit": int(limit), "pid": int(pid),
                  "tags": tags}
        if json:
            params["json"] = 1
        url = self.base_url + "/index.php"

        def once():
            try:
                response = self._get(url, params=params)
                body = response.content
            except requests.RequestException as e:  # the body broke off (reset, truncated)
                raise NetworkError("{}: {}".format(url, e), url) from e
            return parse_posts(body, response.url)

        return self._with_retries("listing {!r} pid={}".format(tags, pid), once)

    def get_tags(self, name_pattern=None, names=None, limit=100, pid=0, orderby="count", order="desc"):
        """Fetch one page of the tag list (``page=dapi&s=tag&q=index``), retrying transient failures.

        Args:
            name_pattern (str): SQL LIKE pattern: ``%`` any run of characters, ``_`` one
                (``%hair%``); ``*`` is taken for ``%``.
            names (str or list): exact names instead (space separated).
            limit (int): 1..1000 tags.
            pid (int): page number from 0.
            orderby (str): ``"count"``, ``"name"`` or ``"date"``; ``order``: ``"desc"`` or ``"asc"``.
        Returns:
            list of Tag
        """
        if not 1 <= int(limit) <= MAX_LIMIT:
            raise ValueError("limit must be in 1..{}, got {}".format(MAX_LIMIT, limit))
        params = {"page": "dapi", "s": "tag", "q": "index", "limit": int(limit), "pid": int(pid),
                  "orderby": orderby, "order": order}
        if name_pattern:
            params["name_pattern"] = name_pattern.replace("*", "%")
        if names:
            params["names"] = names if isinstance(names, str) else " ".join(names)
        url = self.base_url + "/index.php"

        def once():
            try:
                response = self._get(url, params=params)
                body = response.content
            except requests.RequestException as e:
                raise NetworkError("{}: {}".format(url, e), url) from e
            return parse_tags(body, response.url)

        return self._with_retries("tag list {!r}".format(name_pattern or names or ""), once)

    def iter_posts(self, tags="", page_size=100, json=False, empty_page_retries=2, start_before=None):
        """Yield every :class:`Post` of a search, newest first, paging with ``id:<LAST_ID``.

        An empty page is asked again ``empty_page_retries`` times before it is believed to be the
        end, since the site has been seen to answer an empty page partway through a search.
        ``start_before`` (int), or an ``id:<N`` among ``tags``, starts below that post id; other
        ``id:`` and ``sort:`` meta-tags are dropped, since the paging relies on id order.
        """
        words = (tags if isinstance(tags, str) else " ".join(tags)).split()
        last_id = start_before
        for word in words:  # the caller's own id:<N is where paging starts
            match = re.match(r"^id:<(\d+)$", word)
            if match:
                last_id = int(match.group(1)) if last_id is None else min(last_id, int(match.group(1)))
        # Paging needs id-descending order: drop sort: and id: meta-tags, ours replaces them.
        base = " ".join(w for w in words if not w.startswith(("id:", "sort:")))
        while True:
            query = base if last_id is None else (base + " id:<{}".format(last_id)).strip()
            for _ in range(empty_page_retries + 1):
                page = self.get_posts(query, limit=page_size, pid=0, json=json)
                if page.posts:
                    break
            if not page.posts:
                return
            # The API sorts by id descending; sort anyway so paging cannot loop on a bad server.
            posts = sorted(page.posts, key=lambda p: p.id, reverse=True)
            for post in posts:
                if last_id is None or post.id < last_id:
                    yield post
            if last_id is not None and posts[-1].id >= last_id:
                return  # the server ignored id:<N; stop instead of looping
            last_id = posts[-1].id

    # -- images ----------------------------------------------------------------------------

    def image_url(self, post):
        """The post's full-image URL: ``file_url`` when given, else ``{base}/images/{dir}/{image}``."""
        check_post(post)
        if post.file_url.startswith(("http://", "https://")):
            return post.file_url
        if post.file_url.startswith("//"):
            return "https:" + post.file_url
        return urljoin(self.base_url + "/", "images/{}/{}".format(post.directory, post.image))

    def download(self, post, path):
        """Stream the post's image to ``path`` (a temporary file the caller owns) and verify it.

        Checks, in order: byte cap while streaming, the MD5, then a full decode under PIL's
        decompression-bomb guard. A checksum mismatch is downloaded again ``redownloads`` times.

        Returns:
            str: the stored extension from the decoded format (``".jpg"``, ``".png"``, ...).
        Raises:
            PostRejected (a subclass), RetriesExhausted, HTTPStatusError
        """
        url = self.image_url(post)
        for attempt in range(self.redownloads + 1):
            digest = self._with_retries("image of post {}".format(post.id),
                                        lambda: self._stream_to(url, path, post))
            if digest == post.md5:
                break
        else:
            raise ChecksumMismatch("MD5 {} != {} after {} downloads".format(
                digest, post.md5, self.redownloads + 1), post.id, url)
        return verify_image(path, post.id, self.max_pixels)

    def _stream_to(self, url, path, post):
        md5 = hashlib.md5()
        size = 0
        try:
            with self._get(url, stream=True) as response:
                declared = _int_or_none(response.headers.get("Content-Length"))
                if declared is not None and declared > self.max_file_bytes:
                    raise FileTooLarge("{} bytes over the cap of {}".format(declared, self.max_file_bytes),
                                       post.id, url)
                with open(path, "wb") as f:
                    for chunk in response.iter_content(chunk_size=1 << 16):
                        size += len(chunk)
                        if size > self.max_file_bytes:
                            raise FileTooLarge("over the cap of {} bytes".format(self.max_file_bytes),
                                               post.id, url)
                        md5.update(chunk)
                        f.write(chunk)
                    f.flush()
                    os.fsync(f.fileno())
        except requests.RequestException as e:  # reset mid-body, or fewer bytes than Content-Length
            raise NetworkError("{}: {}".format(url, e), url) from e
        if declared is not None and size != declared:
            raise NetworkError("{}: got {} of {} bytes".format(url, size, declared), url)
        return md5.hexdigest()


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
    if fmt not in _FORMAT_EXTENSIONS:
        raise UnsupportedType("image format {} is not one of {}".format(fmt, sorted(_FORMAT_EXTENSIONS)), post_id)
    return _FORMAT_EXTENSIONS[fmt]


# --------------------------------------------------------------------------------------------
# Store


class PostStore(Closing):
    """A folder of verified images, ``images/<md5[:2]>/<md5><ext>``, and their ``posts.jsonl``.

    Each ``posts.jsonl`` line: ``{"id", "md5", "file", "width", "height", "rating", "source",
    "tags": [...], "score"}`` with ``file`` relative to the folder. File names come from the MD5 and
    the decoded format only, so nothing the server says can point outside the folder. One process
    at a time (an advisory lock on ``DIR/.lock``).
    """

    def __init__(self, root):
        self.root = os.path.abspath(os.fspath(root))
        os.makedirs(os.path.join(self.root, PARTIAL_DIR), exist_ok=True)
        try:
            self._lock = FolderLock(self.root, "another scraper")
        except FolderLocked as e:
            raise StoreLocked(str(e)) from None
        # Temporary files of a killed run are never in place; clear them.
        for name in os.listdir(os.path.join(self.root, PARTIAL_DIR)):
            with contextlib.suppress(OSError):
                os.unlink(os.path.join(self.root, PARTIAL_DIR, name))
        self.posts_path = os.path.join(self.root, POSTS_NAME)
        drop_torn_tail(self.posts_path)
        self.ids = set()
        self.md5s = set()
        if os.path.exists(self.posts_path):
            with open(self.posts_path, encoding="utf-8") as f:
                for lineno, line in enumerate(f, 1):
                    if line.strip():
                        try:
                            record = jsonio.loads(line)
                            self.ids.add(int(record["id"]))
                            self.md5s.add(record["md5"])
                        except (ValueError, KeyError, TypeError):
                            raise SafebooruError("{}:{}: not a post record".format(self.posts_path, lineno)) from None
        self._posts = JsonlAppender(self.posts_path)

    def close(self):
        self._posts.close()
        self._lock.release()

    def __len__(self):
        return len(self.ids)

    def has(self, post):
        return post.id in self.ids or post.md5 in self.md5s

    def _find_in_place(self, md5):
        shard = os.path.join(self.root, IMAGES_DIR, md5[:2])
        for ext in _FORMAT_EXTENSIONS.values():
            if os.path.exists(os.path.join(shard, md5 + ext)):
                return os.path.join(shard, md5 + ext)
        return None

    def add(self, post, client):
        """Download, verify and record one post; return its record.

        An image already in place without its line (a kill between rename and append) is
        checked and recorded instead of fetched again.
        """
        check_post(post)
        path = self._find_in_place(post.md5)
        if path is not None and _md5_of(path) != post.md5:
            os.unlink(path)  # cannot happen through this class; never keep a wrong file
            path = None
        if path is None:
            fd, tmp = tempfile.mkstemp(prefix=post.md5 + ".", suffix=".part",
                                       dir=os.path.join(self.root, PARTIAL_DIR))
            os.close(fd)
            try:
                ext = client.download(post, tmp)
                path = os.path.join(self.root, IMAGES_DIR, post.md5[:2], post.md5 + ext)
                os.makedirs(os.path.dirname(path), exist_ok=True)
                os.replace(tmp, path)
                fsync_folder(os.path.dirname(path))
            finally:
                with contextlib.suppress(FileNotFoundError):
                    os.unlink(tmp)
        record = {"id": post.id, "md5": post.md5, "file": os.path.relpath(path, self.root).replace(os.sep, "/"),
                  "width": post.width, "height": post.height, "rating": post.rating, "source": post.source,
                  "tags": list(post.tags), "score": post.score}
        self._posts.append(record)
        self.ids.add(post.id)
        self.md5s.add(post.md5)
        return record


def _md5_of(path):
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def read_posts(root):
    """The records of ``root/posts.jsonl`` (a torn last line is ignored)."""
    records = []
    with open(os.path.join(os.fspath(root), POSTS_NAME), encoding="utf-8") as f:
        for line in f:
            if line.endswith("\n") and line.strip():
                records.append(jsonio.loads(line))
    return records


# --------------------------------------------------------------------------------------------
# The scrape loop


@dataclasses.dataclass
class ScrapeSummary:
    """What one :func:`scrape` did. ``rejected`` maps an error class name to a count."""

    stored: int = 0
    already: int = 0
    filtered: int = 0
    rejected: dict = dataclasses.field(default_factory=dict)

    @property
    def total(self):
        """Posts of the set now in the store (stored this run + already there)."""
        return self.stored + self.already


def scrape(client, store, tags, max_posts, min_size=0, ratings=None, page_size=100, json=False, on_post=None):
    """Fill ``store`` with up to ``max_posts`` posts of a search, newest first.

    Posts already in the store count toward ``max_posts`` (so a rerun completes the same set);
    posts smaller than ``min_size`` pixels on their short side, or whose rating is not in
    ``ratings``, are passed over; rejected posts (:class:`PostRejected`) are counted and skipped.

    Args:
        on_post (callable): ``on_post(post, outcome, summary)`` after each post, ``outcome`` one of
            ``"stored"``, ``"already"``, ``"filtered"`` or the exception; for progress bars.
    Returns:
        ScrapeSummary
    Raises:
        RetriesExhausted, ApiError, HTTPStatusError: the listing failed; what was stored stays.
    """
    summary = ScrapeSummary()
    ratings = {normalize_rating(r) for r in ratings} if ratings else None
    if max_posts <= 0:
        return summary
    for post in client.iter_posts(tags, page_size=min(page_size, MAX_LIMIT), json=json):
        if store.has(post):
            summary.already += 1
            outcome = "already"
        elif min(post.width, post.height) < min_size or (ratings and post.rating not in ratings):
            summary.filtered += 1
            outcome = "filtered"
        else:
            try:
                store.add(post, client)
                summary.stored += 1
                outcome = "stored"
            except PostRejected as e:
                name = type(e).__name__
                summary.rejected[name] = summary.rejected.get(name, 0) + 1
                outcome = e
            except HTTPStatusError as e:
                if isinstance(e, (RateLimited, ServerError)):
                    raise
                # a 404/403 for one image: that post is gone, the rest may not be
                summary.rejected[type(e).__name__] = summary.rejected.get(type(e).__name__, 0) + 1
                outcome = e
        if on_post is not None:
            on_post(post, outcome, summary)
        if summary.total >= max_posts:
            break
    return summary
