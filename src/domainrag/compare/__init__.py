"""Comparing evaluation runs: paired statistics, manifest diffs, gates."""
