"""The one exception type users see.

Every check on user input raises :class:`VidSynthError` with a message that names the problem
and the fix; the command-line entry points turn it into one log line and exit code 2, so a user
never has to read a traceback to learn that a path was mistyped.
"""


class VidSynthError(Exception):
    """A problem with the user's input or environment, with the fix in its message."""
