"""Learnings: shared memory across tasks and workers."""
