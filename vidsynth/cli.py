"""Shared start-up for the command-line entry points: logging and the user-error exit."""

import logging
import sys
from collections.abc import Callable

from vidsynth.errors import VidSynthError

logger = logging.getLogger("vidsynth")


def setup_logging(level: int = logging.INFO) -> None:
    """Log to stderr with time stamps; quiet the chatty libraries."""
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    for name in ("httpx", "urllib3", "PIL"):
        logging.getLogger(name).setLevel(logging.WARNING)


def run_main(main: Callable[[], object]) -> None:
    """Run ``main``; a :class:`VidSynthError` becomes one clear log line and exit code 2."""
    setup_logging()
    try:
        main()
    except VidSynthError as err:
        logger.error("%s", err)
        sys.exit(2)
