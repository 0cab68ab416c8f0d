"""Edits limited to a region of the frame: where the region comes from and what is done with it."""
