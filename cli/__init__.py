"""The `unveil` command: the entry point above the layers. Each command is a module with `add_arguments(parser)`
and `run(args) -> int`; `cli.main` imports a command's module only when that command runs."""
