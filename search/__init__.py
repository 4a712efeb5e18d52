"""The read path: retrieval modes, fusion, re-rank, collapse and evaluation, in plain Python.

``search.searcher.open_searcher(settings, reader)`` is the one way to assemble a search; the
service, every CLI command and the benches use it. Nothing is imported here, so reading the mode
table (``search.modes``) stays cheap.
"""
