"""Test helpers shipped with domainrag for plug-in authors (e.g. the Store conformance suite)."""
