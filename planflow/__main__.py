"""`python -m planflow` runs the CLI."""

from planflow.cli import main

main()
