"""A scripted Anthropic Messages API that plays the model for tests and the demo."""
