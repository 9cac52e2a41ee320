"""The worker: one work item from SPEC.md to a pushed branch, driving Claude Code in a loop."""
