"""The errors a caller can act on. Both are ``ValueError`` subclasses with a one-line
message; the CLI prints that line and exits 1. Any other exception escaping the library
is a bug (ours or a dependency's): the CLI reports it as an internal error, exit 2."""

from __future__ import annotations


class OlistError(ValueError):
    """Input the library cannot use; the message is one line saying what and where."""


class OlistDataError(OlistError):
    """Data that cannot be used: a file, a frame, a column, a row or a saved model,
    named in the message with what was expected."""


class OlistUsageError(OlistError):
    """An argument out of range, or a combination of arguments that cannot work."""
