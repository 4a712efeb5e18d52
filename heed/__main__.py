"""`python -m heed` runs the `heed` command (an entry point; nothing imports it)."""

from cli import main

main()
