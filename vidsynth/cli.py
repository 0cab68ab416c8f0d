"""Shared start-up for the command-line entry points: quiet logging and clean exits.

Every line a command prints should be one the user can act on. So: our own loggers say what long
work is doing (INFO), the libraries only speak up for real problems, log lines are written through
tqdm so they never break a progress bar, a :class:`VidSynthError` is one line and exit 2, and Ctrl-C
is one line (what was kept) and exit 130 instead of a traceback. The same ends are events for a program
that follows the command (:mod:`vidsynth.events`): the error's message, word for word.
"""

from vidsynth.quiet import quiet_libraries, quiet_warnings

import logging
import sys
from collections.abc import Callable

from vidsynth import events
from vidsynth.errors import VidSynthError

logger = logging.getLogger("vidsynth")


class Interrupted(VidSynthError):
    """Ctrl-C, with what was kept (e.g. the last checkpoint) in its message; exit code 130."""

    exit_code = 130


class _Formatter(logging.Formatter):
    """Plain message for progress notes; ``warning:``/``error:`` in front of problems."""

    def format(self, record: logging.LogRecord) -> str:
        message = super().format(record)
        return message if record.levelno < logging.WARNING else f"{record.levelname.lower()}: {message}"


def setup_logging(level: int = logging.INFO) -> None:
    """Our loggers at ``level`` on stderr, short lines; the libraries quiet."""
    handler = logging.StreamHandler()
    handler.setFormatter(_Formatter("%(message)s"))
    logging.basicConfig(level=logging.WARNING, handlers=[handler])  # a no-op where a handler exists (pytest)
    for name in ("vidsynth", "inference", "train", "__main__", "postprocess"):
        logging.getLogger(name).setLevel(level)
    quiet_libraries()


def run_main(main: Callable[[], object]) -> None:
    """Run ``main``: a :class:`VidSynthError` becomes one log line and exit 2, Ctrl-C one line and exit 130."""
    from tqdm.contrib.logging import logging_redirect_tqdm

    setup_logging()
    quiet_warnings()
    try:
        with logging_redirect_tqdm():
            main()
    except Interrupted as err:
        logger.error("interrupted: %s", err)
        events.emit("interrupted", message=str(err))
        sys.exit(err.exit_code)
    except KeyboardInterrupt:
        logger.error("interrupted; nothing was written under a final name")
        events.emit("interrupted", message="nothing was written under a final name")
        sys.exit(Interrupted.exit_code)
    except VidSynthError as err:
        logger.error("%s", err)
        events.emit("error", message=str(err))
        sys.exit(2)
    except Exception as err:  # a bug: the traceback follows on stderr; a follower gets its last line
        events.emit("error", message=f"{type(err).__name__}: {err}")
        raise
