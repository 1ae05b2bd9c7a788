"""A polite client for one booru (the Gelbooru 0.2 API): one ``requests`` session, a delay between
requests, retries with exponential backoff on connection errors, 5xx and 429 (honouring ``Retry-After``).

What a server may make it do is bounded: every request has a total ``deadline`` (the body included: a
server dripping a byte at a time is cut off), listings a byte cap as images have (after decompression,
which is done here, a bounded piece at a time: a gzip bomb stops at the cap), and only the configured
site (and the ``image_hosts`` given for images) is fetched from: a redirect or a ``file_url`` naming
any other host or port is refused before it is asked.
"""
import contextlib
import email.utils
import hashlib
import os
import re
import time
import zlib
from urllib.parse import urljoin, urlsplit

import requests
import urllib3
from PIL import Image

from chainer_dcgan import __version__
from chainer_dcgan.collection.safebooru.errors import (ApiError, ChecksumMismatch, DeadlineExceeded, FileTooLarge,
                                                       ForeignHost, ForeignImageHost, HTTPStatusError,
                                                       MalformedResponse, NetworkError, RateLimited, ResponseTooLarge,
                                                       RetriesExhausted, ServerError)
from chainer_dcgan.collection.safebooru.posts import check_post, int_or_none, parse_posts, parse_tags, verify_image
from chainer_dcgan.utils import Closing

DEFAULT_BASE_URL = "https://safebooru.org"
MAX_LIMIT = 1000  # the API's hard cap on posts per request
#: Redirects followed per request (each one checked against the allowed hosts first).
MAX_REDIRECTS = 5
_DEFAULT_PORTS = {"http": 80, "https": 443}
_CHUNK = 1 << 16

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


def _origin(url):
    """``(host, port, scheme)`` of an http(s) URL, or None for anything else."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError:
        return None
    if parts.scheme not in _DEFAULT_PORTS or not parts.hostname:
        return None
    return parts.hostname.lower(), port or _DEFAULT_PORTS[parts.scheme], parts.scheme


def _same_site(a, b):
    """The same host, and the same port (or each its scheme's default: http and https of one site)."""
    return a[0] == b[0] and (a[1] == b[1] or (a[1] == _DEFAULT_PORTS[a[2]] and b[1] == _DEFAULT_PORTS[b[2]]))


def _decoder(encoding, url):
    """A zlib decompressor for the response's Content-Encoding, None for none; others are refused."""
    encoding = (encoding or "identity").strip().lower()
    if encoding == "identity":
        return None
    if encoding in ("gzip", "x-gzip"):
        return zlib.decompressobj(16 + zlib.MAX_WBITS)
    if encoding == "deflate":
        return zlib.decompressobj()
    raise MalformedResponse("Content-Encoding {!r} is not gzip or deflate".format(encoding[:40]), url)


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
        deadline (float or None): seconds one request may take in all, its body included (default
            ``2 * timeout``); past it the request fails (:class:`DeadlineExceeded`, retried like a
            network error).
        max_file_bytes (int): per-image byte cap.
        max_listing_bytes (int): per-listing byte cap (of the decompressed body; a 1000-post page
            is about 1 MB): :class:`ResponseTooLarge`, not retried.
        image_hosts (list of str): sites (``https://img.example.org``) images may also come from;
            the ``base_url``'s own host always may, and nothing else is fetched (:class:`ForeignHost`,
            :class:`ForeignImageHost`).
        max_pixels (int): per-image pixel cap (PIL's decompression-bomb guard).
        redownloads (int): extra downloads of one image after a checksum mismatch.
        session (requests.Session): to share one; a new one by default.
        sleep (callable): ``sleep(seconds)``; tests pass a recorder.
    """

    def __init__(self, base_url=DEFAULT_BASE_URL, delay=1.0, retries=5, backoff=1.0, max_backoff=60.0,
                 max_retry_after=300.0, timeout=30.0, max_file_bytes=50 * 2 ** 20,
                 max_pixels=Image.MAX_IMAGE_PIXELS or 89478485, redownloads=2, user_agent=None,
                 session=None, sleep=time.sleep, deadline=None, max_listing_bytes=32 * 2 ** 20, image_hosts=()):
        if delay < 0 or retries < 0 or backoff < 0:
            raise ValueError("delay, retries and backoff must be >= 0")
        self.base_url = base_url.rstrip("/")
        self._site = _origin(self.base_url)
        if self._site is None:
            raise ValueError("base_url {!r} is not an http(s) URL".format(base_url))
        self._image_sites = [_origin(h) for h in image_hosts]
        if None in self._image_sites:
            raise ValueError("image_hosts must be http(s) URLs, got {!r}".format(list(image_hosts)))
        self.deadline = float(deadline) if deadline is not None else 2.0 * float(timeout)
        self.max_listing_bytes = int(max_listing_bytes)
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

    def _allowed(self, url, images):
        origin = _origin(url)
        return origin is not None and any(_same_site(origin, site) for site in
                                          [self._site] + (self._image_sites if images else []))

    def _open(self, url, params, deadline, post):
        """The response of one GET (headers read, body not), redirects followed by hand: each URL is
        checked against the allowed hosts before it is asked; a 429/5xx/other non-2xx becomes the
        matching named error."""
        images = post is not None
        for _ in range(MAX_REDIRECTS + 1):
            if not self._allowed(url, images):
                if images:
                    raise ForeignImageHost("its image URL {} is not on {}".format(url[:200], self.base_url),
                                           post.id, url)
                raise ForeignHost("{} is not on {}; refused".format(url[:200], self.base_url), url)
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise DeadlineExceeded("{}: no answer within {:g} s".format(url, self.deadline), url)
            try:
                response = self.session.get(url, params=params, stream=True, allow_redirects=False,
                                            timeout=min(self.timeout, remaining),
                                            headers={"Accept-Encoding": "gzip, deflate"})
            except (requests.ConnectionError, requests.Timeout) as e:
                raise NetworkError("{}: {}".format(url, e), url) from e
            params = None  # a redirect's Location carries its own query
            if not response.is_redirect:
                break
            url = urljoin(response.url, response.headers["Location"])
            response.close()
        else:
            raise ForeignHost("{}: more than {} redirects".format(url[:200], MAX_REDIRECTS), url)
        if response.status_code >= 300:
            retry_after = _parse_retry_after(response.headers.get("Retry-After"))
            response.close()
            cls = RateLimited if response.status_code == 429 else (
                ServerError if response.status_code >= 500 else HTTPStatusError)
            raise cls(response.status_code, response.url, retry_after)
        return response

    def _fetch(self, url, params, cap, sink, post=None):
        """GET ``url`` and pass the body, decompressed, to ``sink(piece)`` a bounded piece at a time.

        At most ``cap`` bytes (:class:`ResponseTooLarge`, or :class:`FileTooLarge` for the image of
        ``post``), within :attr:`deadline` seconds in all (:class:`DeadlineExceeded`). Returns the final URL.
        """
        deadline = time.monotonic() + self.deadline

        def too_large(what):
            if post is not None:
                return FileTooLarge("{} over the cap of {}".format(what, cap), post.id, url)
            return ResponseTooLarge("{}: {} over the cap of {}".format(url, what, cap), url)

        with self._open(url, params, deadline, post) as response:
            url = response.url
            declared = int_or_none(response.headers.get("Content-Length"))
            decoder = _decoder(response.headers.get("Content-Encoding"), url)
            if decoder is None and declared is not None and declared > cap:
                raise too_large("{} bytes".format(declared))
            received = total = 0
            while True:
                if time.monotonic() > deadline:
                    raise DeadlineExceeded("{}: the answer took longer than {:g} s ({} bytes by then)".format(
                        url, self.deadline, received), url)
                try:
                    chunk = response.raw.read1(_CHUNK, decode_content=False)
                except (urllib3.exceptions.HTTPError, requests.RequestException, OSError) as e:
                    raise NetworkError("{}: {}".format(url, e), url) from e  # reset, or short of Content-Length
                if not chunk:
                    break
                received += len(chunk)
                while chunk:
                    if decoder is None:
                        piece, chunk = chunk, b""
                    else:
                        try:
                            piece = decoder.decompress(chunk, _CHUNK)  # a bounded piece: a bomb stops at the cap
                        except zlib.error as e:
                            raise NetworkError("{}: the body does not decompress: {}".format(url, e), url) from None
                        chunk = decoder.unconsumed_tail
                    total += len(piece)
                    if total > cap:
                        raise too_large("more than {} bytes{}".format(
                            cap, "" if decoder is None else " decompressed from {}".format(received)))
                    sink(piece)
        if declared is not None and received != declared:
            raise NetworkError("{}: got {} of {} bytes".format(url, received, declared), url)
        return url

    def _get_body(self, url, params):
        """A listing's whole body (bytes, at most :attr:`max_listing_bytes`) and its final URL."""
        pieces = []
        final = self._fetch(url, params, self.max_listing_bytes, pieces.append)
        return b"".join(pieces), final

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
            body, final = self._get_body(url, params)
            return parse_posts(body, final)

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
            body, final = self._get_body(url, params)
            return parse_tags(body, final)

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
        with open(path, "wb") as f:
            def write(piece):
                md5.update(piece)
                f.write(piece)

            self._fetch(url, None, self.max_file_bytes, write, post=post)
            f.flush()
            os.fsync(f.fileno())
        return md5.hexdigest()
