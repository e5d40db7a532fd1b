"""Command implementations behind the ``wm`` command line (the wiring layer: may import envs)."""
