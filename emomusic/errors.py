"""The one exception type users of the Python API need to catch."""

from __future__ import annotations


class InvalidInputError(ValueError):
    """Bad input from the user: unreadable file, unknown word, out-of-range value.

    The message is one line that says what is wrong and what to do; the CLI prints it
    and exits with code 2.
    """


class CheckpointError(InvalidInputError):
    """A missing, tampered, truncated or mismatched checkpoint; the message names the file."""
