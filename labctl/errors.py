"""The one error type users see: a message that names the problem and the fix."""


class LabError(Exception):
    """A user-facing error: printed as one paragraph, never as a traceback."""
