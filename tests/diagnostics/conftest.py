"""Shared fixtures of the diagnostics tests."""

from __future__ import annotations
