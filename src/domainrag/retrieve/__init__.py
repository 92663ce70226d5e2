"""Stage 3: queries to ranked chunks — lexical, dense, language-aware hybrid fusion, filters."""
