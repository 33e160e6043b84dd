class CliError(Exception):
    """A user-facing failure: the message says what to fix. Exit status 2."""
