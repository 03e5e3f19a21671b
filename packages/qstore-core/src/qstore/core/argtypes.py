"""``argparse`` argument types shared by the ``qstore`` command and the subcommands other
distributions add to it (``qstore.cli`` entry points): a bad value is reported by argparse with
the option's name and what was expected.

>>> int_at_least(2)("3"), positive_int("1"), positive_float("0.5")
(3, 1, 0.5)
"""

from __future__ import annotations

import argparse
from collections.abc import Callable

__all__ = ["int_at_least", "positive_float", "positive_int"]


def int_at_least(low: int) -> Callable[[str], int]:
    """An argument type for integers of at least ``low``."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"expected an integer, got {text!r}") from None
        if value < low:
            raise argparse.ArgumentTypeError(f"must be at least {low}, got {value}")
        return value

    return parse


positive_int = int_at_least(1)
"""An argument type for integers of at least 1."""


def positive_float(text: str) -> float:
    """An argument type for numbers greater than 0."""
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be positive, got {value}")
    return value
