"""The safebooru client's and store's errors: one hierarchy under :class:`SafebooruError`, each carrying
the request (``url``) or the post (``post_id``) it is about."""
from chainer_dcgan.utils.atomic import FolderLocked


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


class DeadlineExceeded(NetworkError):
    """One request (its body included) took longer than the client's total ``deadline``."""


class ResponseTooLarge(SafebooruError):
    """A listing's body (after decompression) is over the client's byte cap; not retried."""


class ForeignHost(SafebooruError):
    """A URL (a redirect's, a listing's) names a host the client does not fetch from; not retried."""


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


class ForeignImageHost(UnsafePost):
    """The post's image (its ``file_url`` or a redirect) is on a host the client does not fetch from."""


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
