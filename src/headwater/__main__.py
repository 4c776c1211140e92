"""``python -m headwater``: the command line (what the ``headwater`` script runs)."""

from headwater.cli.app import main

main()
