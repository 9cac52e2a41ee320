"""Shared pieces: settings, models, errors, database, coordination backends, learnings."""
