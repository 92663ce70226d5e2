"""Stage 2: the embedded index — SQLite catalog, BM25 lexical index, vector index, manifest."""
