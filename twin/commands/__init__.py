"""The CLI's commands, one module per group; twin/cli.py registers them in the order `twin --help` shows."""
