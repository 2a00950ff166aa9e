"""Helpers every package shares (see common.io)."""
