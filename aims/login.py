"""Who runs this command: the OS login, which the policy maps to the people it may decide as.

Its own module, below `aims.commands` and `aims.demo`, which both ask (the demo plays approvers).
"""

from __future__ import annotations


def operator_login() -> str | None:
    """The OS login running this command, which the policy maps to the people it may decide as.

    The effective user's account name, not `getpass.getuser()` first: that reads LOGNAME and USER
    before the account, and anyone sets those. Where there are no POSIX accounts (Windows), what
    `getpass` says.
    """
    import getpass
    import os

    try:
        import pwd

        return pwd.getpwuid(os.geteuid()).pw_name
    except (ImportError, KeyError, AttributeError):
        try:
            return getpass.getuser()
        except (OSError, KeyError, ImportError):
            return None
