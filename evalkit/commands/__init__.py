"""One module per CLI command family (see evalkit.cli.COMMANDS)."""
