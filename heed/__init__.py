"""heed: self-hosted semantic search."""

__version__ = "0.1.0"
