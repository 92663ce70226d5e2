"""Reports of evaluation runs: terminal tables and a self-contained HTML page."""
