"""Video → segment features: decoding (``video``), clip segmenting (``segments``), the I3D network
(``i3d``), its weight files (``weights``), batch extraction (``extract``) and the CLI commands
(``cli_commands``). Submodules are imported on use, so PyAV is only needed for decoding."""
