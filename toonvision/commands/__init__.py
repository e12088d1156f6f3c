"""One module per CLI command.

Each module has a docstring (its first line is the command's one-line help), an
`add_arguments(parser)` function and a `run(args) -> int` function returning the exit
status. Modules import heavy libraries (Keras) inside `run`, so `toonvision --help` is quick.
"""
