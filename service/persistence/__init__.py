"""Persistence: tables, the engine and session factory built from settings, and migrations."""
