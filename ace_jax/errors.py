"""Errors a user can cause: the CLI prints their message on one line and exits non-zero."""


class AceJaxError(Exception):
    """A problem with the user's input (missing file, empty corpus, bad option), not a bug."""
