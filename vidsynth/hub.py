"""A model named by a hub id that cannot be had fails at once, with the fix, instead of after minutes of retries.

Without a network, the Hugging Face libraries retry each file for about 40 s, printing every retry
twice, before they fail. So before a model is loaded, :func:`require_model` decides in seconds: a local
folder, or a hub id already in the Hugging Face cache, goes on; otherwise ``HF_HUB_OFFLINE=1`` fails at
once, and else one connection to the hub's endpoint (``HF_ENDPOINT`` is respected, and a configured
proxy is tried instead of the hub) with a short timeout decides whether the libraries may try.

A model folder can also say that its weights are random (:mod:`vidsynth.testing`'s offline stand-ins
write :data:`RANDOM_WEIGHTS_FILE`), so that what is made or scored with it is labelled as noise.
"""

import functools
import socket
import threading
import urllib.request
from pathlib import Path
from urllib.parse import urlsplit

from huggingface_hub import constants, try_to_load_from_cache
from huggingface_hub.utils import HFValidationError, validate_repo_id

from vidsynth.errors import VidSynthError

PROBE_SECONDS = 3.0
RANDOM_WEIGHTS_FILE = "RANDOM_WEIGHTS.txt"  # in a model folder whose weights are random (an offline stand-in)


def has_random_weights(ref: str | Path) -> bool:
    """Whether ``ref`` is a model folder marked as holding random weights."""
    return (Path(ref).expanduser() / RANDOM_WEIGHTS_FILE).is_file()


def is_repo_id(ref: str) -> bool:
    """Whether ``ref`` is spelled like a hub id (``org/name``), not like the path of a folder."""
    try:
        validate_repo_id(ref)
    except HFValidationError:
        return False
    return not ref.startswith(".")


@functools.cache
def hub_reachable(endpoint: str, timeout: float = PROBE_SECONDS) -> bool:
    """Whether a TCP connection to ``endpoint`` (or the proxy it would go through) opens within ``timeout`` s.

    The connection is made in a thread that is given up after ``timeout``, so a name lookup that hangs
    (no network, no DNS) cannot hold the caller longer either. Asked once per process and endpoint.
    """
    url = urlsplit(endpoint)
    host, port = url.hostname, url.port or (443 if url.scheme == "https" else 80)
    proxy = urllib.request.getproxies().get(url.scheme)
    if proxy and not urllib.request.proxy_bypass(host or ""):
        proxy_url = urlsplit(proxy if "://" in proxy else f"http://{proxy}")
        host, port = proxy_url.hostname, proxy_url.port or 80
    opened = []

    def connect() -> None:
        try:
            with socket.create_connection((host, port), timeout=timeout):
                opened.append(True)
        except OSError:  # refused, no route, no name, timed out
            pass

    thread = threading.Thread(target=connect, daemon=True)
    thread.start()
    thread.join(timeout)
    return bool(opened)


def require_model(ref: str, marker: str, what: str, fix: str) -> None:
    """Refuse the hub id ``ref`` unless its ``marker`` file is in the cache or the hub answers.

    A folder here, or a path that does not exist (not spelled like a hub id), is left to the caller's own
    checks. ``what`` names the model in the message (e.g. "CLIP model"), ``fix`` says how to get it.
    """
    if Path(ref).expanduser().exists() or not is_repo_id(ref):
        return
    if isinstance(try_to_load_from_cache(ref, marker), str):
        return
    if constants.HF_HUB_OFFLINE:
        why = "HF_HUB_OFFLINE is set"
    elif not hub_reachable(constants.ENDPOINT):
        why = f"{constants.ENDPOINT} does not answer: no network, or set HF_ENDPOINT to a mirror"
    else:
        return  # the hub answers: the library downloads it, or says the id is wrong
    raise VidSynthError(
        f"cannot reach the Hugging Face hub for the {what} {ref} ({why}) and it is not in the local cache. {fix}"
    )
