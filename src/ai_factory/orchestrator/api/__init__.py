"""HTTP routes of the orchestrator (FastAPI)."""
