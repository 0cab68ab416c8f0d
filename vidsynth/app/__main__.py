"""``python -m vidsynth.app``: the web app, served locally (beyond this machine only with a login).

    python -m vidsynth.app [--host 127.0.0.1] [--port 7860] [--outputs outputs]
                           [--auth USER:PASSWORD | --auth-file FILE | --no-auth] [--share]
                           [--max-upload-mb 200] [--keep-uploads-days 30]

Prints the local URL and serves until Ctrl-C, which cancels the running job (its partial output is
removed) before the app stops; the jobs still waiting run when it starts again.
"""

import argparse
import logging
from pathlib import Path

from vidsynth.app.access import AUTH_ENV, check_exposure, check_port, read_logins
from vidsynth.cli import run_main
from vidsynth.errors import VidSynthError

logger = logging.getLogger("vidsynth.app")


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m vidsynth.app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address (0.0.0.0: every interface; needs a login)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link (needs a login)")
    parser.add_argument("--outputs", default="outputs", help="folder of the runs, clips and models (default outputs)")
    login = parser.add_mutually_exclusive_group()
    login.add_argument("--auth", metavar="USER:PASSWORD", help=f"the login the page asks for (or set {AUTH_ENV})")
    login.add_argument("--auth-file", metavar="FILE", help="a file of logins, USER:PASSWORD a line")
    login.add_argument("--no-auth", action="store_true", help="serve beyond this machine without a login, knowingly")
    parser.add_argument("--max-upload-mb", type=int, default=200, help="largest upload accepted, in MB (default 200)")
    parser.add_argument(
        "--keep-uploads-days",
        type=float,
        default=30,
        help="at start-up, remove uploaded clips older than this that no run or waiting job uses (default 30)",
    )
    args = parser.parse_args(argv)
    if args.max_upload_mb < 1:
        raise VidSynthError(f"--max-upload-mb {args.max_upload_mb} is below 1. Pass e.g. --max-upload-mb 200")
    if args.keep_uploads_days < 0:
        raise VidSynthError(f"--keep-uploads-days {args.keep_uploads_days:g} is negative. Pass e.g. 30")
    return args


def main(argv: list[str] | None = None) -> None:
    args = parse_args(argv)
    logins = [] if args.no_auth else read_logins(args.auth, args.auth_file)
    check_exposure(args.host, args.share, logins, args.no_auth)
    check_port(args.host, args.port)

    from vidsynth.app.server import serve
    from vidsynth.app.service import Studio  # Gradio and torch load only once the checks above passed

    studio = Studio(Path(args.outputs), max_upload_mb=args.max_upload_mb, keep_uploads_days=args.keep_uploads_days)
    try:
        page, url = serve(studio, args.host, args.port, share=args.share, auth=logins or None)
        models = studio.models
        for notice in (models.base_notice, models.animator_notice, models.segment_notice, models.clip_notice):
            if notice:
                logger.warning("%s", notice.replace("**", "").replace("`", ""))
        login = " (login required)" if logins else ""
        print(f"VidSynth web app: {url}" + (f" (public link: {page.share_url})" if page.share_url else "") + login)
        page.block_thread()
    finally:
        studio.close()


if __name__ == "__main__":
    run_main(main)
