"""``python -m vidsynth.app``: the web app, served locally (``--share`` for a public Gradio link).

    python -m vidsynth.app [--host 127.0.0.1] [--port 7860] [--share] [--outputs outputs]

Prints the local URL and serves until Ctrl-C, which cancels the running job (its partial output is
removed) before the app stops.
"""

import argparse
import logging
from pathlib import Path

from vidsynth.cli import run_main

logger = logging.getLogger("vidsynth.app")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m vidsynth.app", description=__doc__.split("\n\n")[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to serve on (0.0.0.0: every interface)")
    parser.add_argument("--port", type=int, default=7860, help="port (default 7860)")
    parser.add_argument("--share", action="store_true", help="also make a public gradio.live link (off by default)")
    parser.add_argument("--outputs", default="outputs", help="folder of the runs, clips and models (default outputs)")
    args = parser.parse_args(argv)

    from vidsynth.app.service import Studio
    from vidsynth.app.ui import serve

    studio = Studio(Path(args.outputs))
    try:
        page, url = serve(studio, args.host, args.port, share=args.share)
        for notice in (studio.models.base_notice, studio.models.clip_notice):
            if notice:
                logger.warning("%s", notice.replace("**", "").replace("`", ""))
        print(f"VidSynth web app: {url}" + (f" (public link: {page.share_url})" if page.share_url else ""))
        page.block_thread()
    finally:
        studio.close()


if __name__ == "__main__":
    run_main(main)
