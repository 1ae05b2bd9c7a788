"""Measuring a generator: cheap image statistics, InceptionV3 features, FID/KID/precision/recall, and
whether a conditional model draws the tags asked for."""
