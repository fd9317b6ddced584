"""Helpers shared by test suites (not tests themselves)."""
