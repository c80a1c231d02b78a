"""The `jobico` command line: commands, the access commands, rendering, run-local."""
