"""One declarative check of parameter values, in the spirit of scikit-learn's parameter
constraints: each public entry point states what its numbers may be, one call checks them all.

    check_params({"batch_size": (Integral, Interval(1, None)),
                  "fill": (Real, Interval(0, None))}, batch_size=batch_size, fill=fill)

A failing value raises :class:`~asdxai.errors.ConfigError` with ``param`` set to its name and a
message of the form ``<name> must be <what>, got <value>`` (``a positive integer``, ``a
non-negative integer``, ``a positive number``, ``a number >= 0``, ``a number in [0, 1]`` ...).
Booleans are never numbers here, NaN never lies in an interval. Layer 0: no torch.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from numbers import Integral, Real
from typing import Any

from .errors import ConfigError

__all__ = ["Integral", "Interval", "Real", "check_params", "describe"]


@dataclass(frozen=True)
class Interval:
    """The numbers between ``left`` and ``right`` (None = unbounded), ends included unless
    ``closed`` says otherwise (``"both"``, ``"left"``, ``"right"``, ``"neither"``)."""

    left: float | None
    right: float | None
    closed: str = "both"

    def __contains__(self, value: Any) -> bool:
        if not isinstance(value, Real) or isinstance(value, bool) or math.isnan(value):
            return False
        left_ok = self.left is None or (
            value >= self.left if self.closed in ("both", "left") else value > self.left
        )
        right_ok = self.right is None or (
            value <= self.right if self.closed in ("both", "right") else value < self.right
        )
        return left_ok and right_ok

    def describe(self, kind: str) -> str:
        """``kind`` ("integer" or "number") bounded by this interval, in words."""
        lo_in, hi_in = self.closed in ("both", "left"), self.closed in ("both", "right")
        what = f"an {kind}" if kind == "integer" else f"a {kind}"
        if self.right is None and self.left == 0:
            return f"a {'non-negative' if lo_in else 'positive'} {kind}"
        if self.right is None and self.left == 1 and lo_in and kind == "integer":
            return "a positive integer"
        if self.left is not None and self.right is not None:
            return (f"{what} in {'[' if lo_in else '('}{self.left:g}, "
                    f"{self.right:g}{']' if hi_in else ')'}")  # fmt: skip
        if self.left is not None:
            return f"{what} {'>=' if lo_in else '>'} {self.left:g}"
        if self.right is not None:
            return f"{what} {'<=' if hi_in else '<'} {self.right:g}"
        return what


def describe(kind: type, interval: Interval | None) -> str:
    """What a constraint accepts, in words (the middle of the error message)."""
    word = "integer" if kind is Integral else "number"
    return (interval or Interval(None, None)).describe(word)


def check_params(constraints: dict[str, tuple[type, Interval | None]], /, **values: Any) -> None:
    """Check every value of ``values`` against its constraint ``(type, interval)``.

    Parameters
    ----------
    constraints : name -> (``Integral`` or ``Real``, :class:`Interval` or None); a name
        without a value is not checked
    values : the values, by the names of ``constraints``

    Raises
    ------
    ConfigError
        The first value of the wrong type, not finite, or outside its interval (``param`` =
        its name).
    """
    for name, value in values.items():
        kind, interval = constraints[name]
        is_kind = isinstance(value, kind) and not isinstance(value, bool)
        finite = is_kind and math.isfinite(value)
        if not finite or (interval is not None and value not in interval):
            raise ConfigError(
                f"{name} must be {describe(kind, interval)}, got {value!r}", param=name
            )
