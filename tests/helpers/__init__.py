"""Helpers shared by the tests: import them as ``tests.helpers.NAME`` (no sys.path edits)."""
