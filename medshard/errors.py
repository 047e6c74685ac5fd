"""Errors a person can act on: the CLI prints the message as one line and exits 2."""


class UserError(Exception):
    """Bad input from a user: unknown source, missing raw files, no consent, bad config.

    The message is one line saying what is wrong and what to do.
    """
