"""The scrape loop that ``tools/scrape_safebooru.py`` runs: a search, through a client, into a store."""
import dataclasses

from chainer_dcgan.collection.safebooru.client import MAX_LIMIT
from chainer_dcgan.collection.safebooru.errors import HTTPStatusError, PostRejected, RateLimited, ServerError
from chainer_dcgan.collection.safebooru.posts import normalize_rating


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
