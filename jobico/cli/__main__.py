"""`python -m jobico.cli`: the `jobico` command."""

from jobico.cli.main import main

main()
