"""A polite client for one booru (the Gelbooru 0.2 API): one ``requests`` session, a delay between
requests, retries with exponential backoff on connection errors, 5xx and 429 (honouring ``Retry-After``)."""
import contextlib
import email.utils
import hashlib
import os
import re
import time
from urllib.parse import urljoin

import requests
from PIL import Image

from chainer_dcgan import __version__
from chainer_dcgan.collection.safebooru.errors import (ApiError, ChecksumMismatch, FileTooLarge, HTTPStatusError,
                                                       MalformedResponse, NetworkError, RateLimited, RetriesExhausted,
                                                       ServerError)
from chainer_dcgan.collection.safebooru.posts import check_post, int_or_none, parse_posts, parse_tags, verify_image
from chainer_dcgan.utils import Closing

DEFAULT_BASE_URL = "https://safebooru.org"
MAX_LIMIT = 1000  # the API's hard cap on posts per request

_RETRYABLE = (RateLimited, ServerError, NetworkError, MalformedResponse)


def _user_agent():
    return "chainer-dcgan/{} (dataset scraper for a DCGAN; python-requests/{})".format(
        __version__, requests.__version__)


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
                declared = int_or_none(response.headers.get("Content-Length"))
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
