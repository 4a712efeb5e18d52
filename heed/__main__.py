"""`python -m heed` is the `heed` command."""

from heed.cli import main

main()
