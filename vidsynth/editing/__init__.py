"""Editing a clip: the request resolved once (``request``), rendered (``render``: the video pipeline or the
per-frame ``baseline``), and written (``outputs``); ``validation`` is the same edit during tuning."""
