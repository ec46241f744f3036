"""Command-line tools: ``nmcompat <subcommand>`` (python -m nmcompat.tools)."""
