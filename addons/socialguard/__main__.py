"""`python -m socialguard` runs the command line."""

from socialguard.cli.app import main

main()
