"""Test doubles shipped for tests and benchmarks: a local stand-in for safebooru."""
