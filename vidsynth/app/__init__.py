"""The web app: ``python -m vidsynth.app`` (see ``__main__.py``).

Gradio's usage analytics are switched off before Gradio is imported anywhere in the app: the app runs
offline, and it never reports to anyone.
"""

import os

os.environ["GRADIO_ANALYTICS_ENABLED"] = "False"
