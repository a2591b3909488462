"""``python -m visionloop``: the same as the ``visionloop`` command."""

from visionloop.cli import main

main()
