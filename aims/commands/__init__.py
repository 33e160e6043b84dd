"""The `aims` commands, one module per resource group; `aims.cli` builds the parser from them.

Each module imports only argparse, the standard library and `aims.commands.common` at the top, so
`aims --help` and a register command start fast; what a command needs it imports when it runs.
"""
