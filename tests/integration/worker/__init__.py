"""Worker integration tests: real git, the GitHub stand-in."""
