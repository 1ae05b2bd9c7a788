"""Building a dataset from the web: the safebooru client and store, and face cropping."""
