"""The one error type a person fixes, whichever layer finds the problem."""


class UserError(Exception):
    """A user-facing failure: the message says what to fix. The CLI exits with status 2."""
