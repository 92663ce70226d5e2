"""Stage 1: files to documents (loaders) and documents to chunks (chunking)."""
