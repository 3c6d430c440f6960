"""The one error type every tool raises for bad input."""


class ToolError(ValueError):
    """A tool refused its input; the message says what was wrong."""
