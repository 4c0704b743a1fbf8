"""`python -m socialguard` runs the command line."""

from socialguard.cli import main

main()
