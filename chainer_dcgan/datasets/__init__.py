"""Datasets: the procedural default (:mod:`chainer_dcgan.datasets.synthetic`) and folders of images."""
from chainer_dcgan.datasets.synthetic import (  # noqa: F401
    TAGS, SyntheticFaces, draw_face, face_random_state, face_tags, write_dataset)

from chainer_dcgan.datasets.images import ImageDataset, UnreadableImageWarning, list_images  # noqa: F401
from chainer_dcgan.datasets.tagged import TaggedDataset, TagVocabularyError  # noqa: F401

__all__ = ["TaggedDataset", "TagVocabularyError", "ImageDataset", "UnreadableImageWarning", "list_images", "TAGS", "SyntheticFaces", "draw_face", "face_random_state", "face_tags", "write_dataset"]
