"""The one error type users see: a message that names the problem and the fix."""

import re

_CONTROL = re.compile(r"[\x00-\x1f\x7f]")


class LabError(Exception):
    """A user-facing error: printed as one paragraph, never as a traceback."""

    exit_code = 2


def printable(text: str) -> str:
    """text with control characters (newlines too) written as escapes: an error stays one paragraph."""
    return _CONTROL.sub(lambda m: repr(m.group())[1:-1], text)


class Interrupted(LabError):
    """Work stopped midway by Ctrl-C; the message says what is left and how to finish."""

    exit_code = 130
