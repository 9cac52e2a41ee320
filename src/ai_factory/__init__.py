"""AI Factory: GitHub issues in, pull requests out, with Claude Code in a fresh-context loop."""

__version__ = "0.1.0"
