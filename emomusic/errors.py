"""The one exception type users of the Python API need to catch, and the one range check that raises it."""

from __future__ import annotations

from typing import Any


class InvalidInputError(ValueError):
    """Bad input from the user: unreadable file, unknown word, out-of-range value.

    The message is one line that says what is wrong and what to do; the CLI prints it
    and exits with code 2.
    """


class CheckpointError(InvalidInputError):
    """A missing, tampered, truncated or mismatched checkpoint; the message names the file."""


def check_range(name: str, value: Any, lo: float, hi: float, kind: type = float, unit: str = "") -> Any:
    """`value` converted with `kind` and checked to lie in [lo, hi]; None passes through.

    Args:
        name: the setting's name, for the error message.
        value: what the user gave (a string from a form field is fine when it converts).
        lo, hi: the inclusive bounds.
        kind: float or int.
        unit: said after the bounds in the message (e.g. "BPM").

    Returns:
        The converted value, or None when `value` is None.

    Raises:
        InvalidInputError: not a number (NaN included) or out of range; one line.
    """
    if value is None:
        return None
    try:
        v = kind(value)
    except (TypeError, ValueError, OverflowError):
        raise InvalidInputError(f"{name} must be a number, got {value!r}") from None
    if not (lo <= v <= hi) or v != v:
        raise InvalidInputError(f"{name} must be between {lo:g} and {hi:g}{' ' + unit if unit else ''}, got {value!r}")
    return v
