"""Media: reading clips (``video``), their sound (``sound``), writing MP4s, GIF grids and JSON (``writers``,
``captions``), frame folders (``frames``) and the rendered demo scene (``scene``)."""
