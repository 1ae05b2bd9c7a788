"""A resumable, verified image store: ``DIR/images/ab/<md5>.<ext>`` plus ``DIR/posts.jsonl``."""
import contextlib
import hashlib
import os
import tempfile

from chainer_dcgan.collection.safebooru.errors import SafebooruError, StoreLocked
from chainer_dcgan.collection.safebooru.posts import FORMAT_EXTENSIONS, check_post
from chainer_dcgan.utils import Closing, jsonio
from chainer_dcgan.utils.atomic import FolderLock, FolderLocked, JsonlAppender, drop_torn_tail, fsync_folder

POSTS_NAME = "posts.jsonl"
IMAGES_DIR = "images"
PARTIAL_DIR = ".partial"


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
                            record = jsonio.expect(jsonio.loads(line), "object", "the line")
                            self.ids.add(jsonio.expect(record["id"], "positive", "'id'"))
                            self.md5s.add(jsonio.expect(record["md5"], "str", "'md5'"))
                        except KeyError as e:
                            raise SafebooruError("{}:{}: not a post record (no {})".format(
                                self.posts_path, lineno, e)) from None
                        except ValueError as e:
                            raise SafebooruError("{}:{}: not a post record ({})".format(
                                self.posts_path, lineno, e)) from None
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
        for ext in FORMAT_EXTENSIONS.values():
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
