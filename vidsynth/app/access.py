"""Who may reach the app, and where it listens: checked before Gradio is even imported, so a refusal is instant.

Anyone who reaches the page can queue jobs on the machine's device and download the results. On the
loopback (``127.0.0.1``, ``localhost``, ``::1``) that is only this machine's users; beyond it
(``--host 0.0.0.0``, an address of the machine, ``--share``'s public link) the app needs a login
(Gradio's ``auth``): ``--auth USER:PASSWORD``, ``--auth-file FILE`` (a ``USER:PASSWORD`` a line) or
the ``VIDSYNTH_AUTH`` environment variable, or an explicit ``--no-auth``. A file or the variable keep
the password out of the process list.
"""

import errno
import ipaddress
import os
import socket
from pathlib import Path

from vidsynth.errors import VidSynthError

AUTH_ENV = "VIDSYNTH_AUTH"
_HOW = f"Pass --auth USER:PASSWORD (or --auth-file FILE, or set {AUTH_ENV}), or --no-auth to"


def parse_logins(text: str, source: str) -> list[tuple[str, str]]:
    """``USER:PASSWORD`` pairs, one a line (blank lines and ``#`` comments skipped); ``source`` names where from."""
    logins = []
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        user, _, password = line.partition(":")
        if not user.strip() or not password:
            raise VidSynthError(f"{source} must give USER:PASSWORD (one a line), neither empty. Write e.g. ann:s3cret")
        logins.append((user.strip(), password))
    if not logins:
        raise VidSynthError(f"{source} gives no USER:PASSWORD. Write e.g. ann:s3cret")
    return logins


def read_logins(auth: str | None, auth_file: str | None) -> list[tuple[str, str]]:
    """The logins of ``--auth``, else of ``--auth-file``, else of ``$VIDSYNTH_AUTH``; none when none is given."""
    if auth is not None:
        return parse_logins(auth, "--auth")
    if auth_file is not None:
        try:
            text = Path(auth_file).read_text()
        except OSError as err:
            raise VidSynthError(f"cannot read --auth-file {auth_file}: {err.strerror}. Check the path") from None
        return parse_logins(text, f"--auth-file {auth_file}")
    if os.environ.get(AUTH_ENV):
        return parse_logins(os.environ[AUTH_ENV], AUTH_ENV)
    return []


def is_loopback(host: str) -> bool:
    """Whether ``host`` is this machine only (``localhost`` or a loopback address); a name is not trusted."""
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def check_exposure(host: str, share: bool, logins: list, no_auth: bool) -> None:
    """Refuse to serve beyond the loopback, or a public link, without a login, unless ``--no-auth`` says so."""
    if logins or no_auth:
        return
    if share:
        raise VidSynthError(f"--share makes a public link to the app, which has no login. {_HOW} share it open")
    if not is_loopback(host):
        raise VidSynthError(f"--host {host} serves the app beyond this machine without a login. {_HOW} serve it open")


def check_port(host: str, port: int) -> None:
    """Refuse a port that is taken (Gradio would look for another for a while, then raise)."""
    if not 1 <= port <= 65535:
        raise VidSynthError(f"--port {port} is not a port. Pass --port N with N from 1 to 65535, e.g. 7860")
    try:
        addresses = {info[4][:2]: info[0] for info in socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)}
    except socket.gaierror:
        raise VidSynthError(f"--host {host} is not a name or address of this machine. Pass e.g. 127.0.0.1") from None
    addresses.setdefault(("127.0.0.1", port), socket.AF_INET)  # where Gradio itself checks the port
    for address, family in addresses.items():
        with socket.socket(family, socket.SOCK_STREAM) as probe:
            probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the server will
            try:
                probe.bind(address)
            except OSError as err:
                if err.errno == errno.EADDRINUSE:
                    raise VidSynthError(
                        f"port {port} is already in use (another app, or a VidSynth app still running). "
                        f"Pass --port N with a free port, or stop the other one"
                    ) from None
                raise VidSynthError(
                    f"cannot listen on {host} port {port}: {err.strerror}. Pass another --host"
                ) from err
