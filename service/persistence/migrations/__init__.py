"""Alembic migrations of the aidmesh schema."""
