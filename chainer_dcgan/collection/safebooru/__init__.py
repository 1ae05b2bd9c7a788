"""A polite safebooru (Gelbooru 0.2 API) client and a resumable, verified image store.

Split by role: :mod:`~chainer_dcgan.collection.safebooru.errors` (the error hierarchy),
:mod:`~chainer_dcgan.collection.safebooru.posts` (records, parsing, checks),
:mod:`~chainer_dcgan.collection.safebooru.client` (the HTTP client),
:mod:`~chainer_dcgan.collection.safebooru.store` (the image store) and
:mod:`~chainer_dcgan.collection.safebooru.scraping` (the scrape loop); every name is importable from here.

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
from chainer_dcgan.collection.safebooru.errors import (  # noqa: F401
    ApiError, ChecksumMismatch, DeadlineExceeded, FileTooLarge, ForeignHost, ForeignImageHost, HTTPStatusError,
    MalformedResponse, NetworkError, NotAnImage, PostRejected, RateLimited, ResponseTooLarge, RetriesExhausted,
    SafebooruError, ServerError, StoreLocked, UnsafePost, UnsupportedType)
from chainer_dcgan.collection.safebooru.posts import (  # noqa: F401
    FORMAT_EXTENSIONS, IMAGE_EXTENSIONS, Page, Post, Tag, check_post, normalize_rating, parse_posts, parse_tags,
    verify_image)
from chainer_dcgan.collection.safebooru.client import DEFAULT_BASE_URL, MAX_LIMIT, SafebooruClient  # noqa: F401
from chainer_dcgan.collection.safebooru.store import (  # noqa: F401
    IMAGES_DIR, PARTIAL_DIR, POSTS_NAME, PostStore, read_posts)
from chainer_dcgan.collection.safebooru.scraping import ScrapeSummary, scrape  # noqa: F401

__all__ = ["SafebooruError", "ApiError", "HTTPStatusError", "RateLimited", "ServerError", "NetworkError",
           "MalformedResponse", "RetriesExhausted", "PostRejected", "UnsafePost", "UnsupportedType",
           "ChecksumMismatch", "FileTooLarge", "NotAnImage", "StoreLocked", "DeadlineExceeded", "ResponseTooLarge",
           "ForeignHost", "ForeignImageHost",
           "Post", "Page", "Tag", "parse_posts", "parse_tags", "normalize_rating", "check_post", "verify_image",
           "IMAGE_EXTENSIONS", "FORMAT_EXTENSIONS",
           "SafebooruClient", "DEFAULT_BASE_URL", "MAX_LIMIT",
           "PostStore", "read_posts", "POSTS_NAME", "IMAGES_DIR", "PARTIAL_DIR",
           "ScrapeSummary", "scrape"]
