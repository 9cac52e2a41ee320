"""The live web dashboard, served by the orchestrator app."""
