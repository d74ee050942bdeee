"""The command groups of `ansim` (cli.py assembles them): one module per noun."""
