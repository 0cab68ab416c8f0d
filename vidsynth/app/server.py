"""Serving the page: who may open it, how large an upload may be, which files its URLs reach.

The page itself (:mod:`vidsynth.app.ui`) knows nothing of this; the server asks for the logins it was
started with, refuses uploads above the studio's limit, serves of the outputs folder only clips and
results (:mod:`vidsynth.app.served`) and lets Gradio drop its copies of uploads and shown files a day
after they were made.
"""

import gradio as gr
from starlette.middleware import Middleware

from vidsynth.app.served import ServedFiles
from vidsynth.app.service import Studio
from vidsynth.app.ui import CSS, build_page
from vidsynth.app.uploads import MB


def serve(
    studio: Studio, host: str, port: int | None, share: bool = False, auth: list[tuple[str, str]] | None = None
) -> tuple[gr.Blocks, str]:
    """Build the page and start serving it (in a thread); returns it and its local URL.

    ``auth``: the (user, password) logins the page asks for (None: no login). Uploads above the studio's
    ``max_upload_mb`` are refused; of the outputs folder only clips and results are served
    (:mod:`vidsynth.app.served`); Gradio's copies of uploads and shown files go a day after they were made.
    """
    page = build_page(studio)
    page.queue(default_concurrency_limit=4)
    page.delete_cache = (3600, 86400)  # every hour, what Gradio copied more than a day ago
    _, url, _ = page.launch(
        server_name=host,
        server_port=port,
        share=share,
        auth=auth,
        auth_message="VidSynth: log in with a user and password the app was started with.",
        prevent_thread_lock=True,
        max_file_size=studio.max_upload_mb * MB,
        allowed_paths=[str(studio.outputs)],  # so Gradio copies what the page shows; ServedFiles narrows URLs
        blocked_paths=[str(studio.checkpoints), str(studio.outputs / ".queue")],
        app_kwargs={"middleware": [Middleware(ServedFiles, outputs=studio.outputs)]},
        quiet=True,
        css=CSS,
        footer_links=["api"],
    )
    return page, url
