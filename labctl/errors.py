"""The one error type users see: a message that names the problem and the fix."""


class LabError(Exception):
    """A user-facing error: printed as one paragraph, never as a traceback."""

    exit_code = 2


class Interrupted(LabError):
    """Work stopped midway by Ctrl-C; the message says what is left and how to finish."""

    exit_code = 130
