"""Symbols and parameter expressions.

An :class:`Expression` is a polynomial in named symbols with real coefficients:
``constant + sum(coeff * sym_a * sym_b * ...)``. Linear forms (``2*theta + 0.1``) and the
data-times-weight products used by re-uploading encodings (``x_3 * w_3``) are both covered.
A :class:`Parameter` is an expression made of one symbol with coefficient 1.

>>> theta = Parameter("theta")
>>> expr = 2 * theta + 0.1
>>> expr.evaluate({"theta": 0.5})
1.1
"""

from __future__ import annotations

import math
import numbers
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Union

import numpy as np
import numpy.typing as npt

from qstore.core.errors import NonFiniteParameterError, ParameterError, UnboundParameterError

Monomial = tuple[str, ...]  # sorted symbol names; a symbol may repeat (theta**2)
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_.\[\]]*$")

ParamLike = Union["Expression", float, int, str]


def _check_name(name: str) -> str:
    if not isinstance(name, str) or not _NAME.match(name):
        raise ParameterError(
            f"Invalid symbol name {name!r}: use letters, digits, '_', '.', '[' or ']', "
            "starting with a letter or '_' (for example 'theta_0')."
        )
    return name


def check_finite(value: float, what: str = "parameter") -> float:
    """Return ``value`` as float, or raise :class:`NonFiniteParameterError`."""
    v = float(value)
    if not math.isfinite(v):
        raise NonFiniteParameterError(
            f"The {what} value {value!r} is not finite; parameters must be real finite numbers."
        )
    return v


@dataclass(frozen=True, eq=False)
class Expression:
    """A real polynomial in named symbols (immutable, hashable)."""

    terms: tuple[tuple[Monomial, float], ...] = ()
    constant: float = 0.0

    # -- construction -----------------------------------------------------------------------
    @staticmethod
    def _from_dict(terms: Mapping[Monomial, float], constant: float) -> Expression:
        kept = tuple(sorted((m, float(c)) for m, c in terms.items() if c != 0.0))
        if len(kept) == 1 and kept[0][1] == 1.0 and len(kept[0][0]) == 1 and constant == 0.0:
            return Parameter(kept[0][0][0])
        return Expression(kept, float(constant))

    @staticmethod
    def coerce(value: ParamLike) -> Expression:
        """Turn a number, a symbol name or an expression into an :class:`Expression`."""
        if isinstance(value, Expression):
            return value
        if isinstance(value, str):
            return Parameter(value)
        if isinstance(value, numbers.Real) and not isinstance(value, bool):
            return Expression((), check_finite(float(value)))
        raise ParameterError(
            f"Cannot use {value!r} (type {type(value).__name__}) as a gate parameter; "
            "give a real number, a symbol name (str) or an Expression."
        )

    # -- inspection -------------------------------------------------------------------------
    @property
    def symbols(self) -> tuple[str, ...]:
        """Symbol names in order of first appearance."""
        seen: dict[str, None] = {}
        for mono, _ in self.terms:
            for s in mono:
                seen.setdefault(s, None)
        return tuple(seen)

    @property
    def is_constant(self) -> bool:
        return not self.terms

    @property
    def degree(self) -> int:
        return max((len(m) for m, _ in self.terms), default=0)

    def is_linear(self) -> bool:
        return self.degree <= 1

    # -- arithmetic -------------------------------------------------------------------------
    def _as_dict(self) -> dict[Monomial, float]:
        return dict(self.terms)

    def __add__(self, other: ParamLike) -> Expression:
        o = Expression.coerce(other)
        d = self._as_dict()
        for m, c in o.terms:
            d[m] = d.get(m, 0.0) + c
        return Expression._from_dict(d, self.constant + o.constant)

    __radd__ = __add__

    def __neg__(self) -> Expression:
        return self * -1.0

    def __sub__(self, other: ParamLike) -> Expression:
        return self + (-Expression.coerce(other))

    def __rsub__(self, other: ParamLike) -> Expression:
        return Expression.coerce(other) + (-self)

    def __mul__(self, other: ParamLike) -> Expression:
        o = Expression.coerce(other)
        d: dict[Monomial, float] = {}
        left = [*self.terms, ((), self.constant)]
        right = [*o.terms, ((), o.constant)]
        const = 0.0
        for m1, c1 in left:
            for m2, c2 in right:
                m = tuple(sorted(m1 + m2))
                if m:
                    d[m] = d.get(m, 0.0) + c1 * c2
                else:
                    const += c1 * c2
        return Expression._from_dict(d, const)

    __rmul__ = __mul__

    def __truediv__(self, other: float) -> Expression:
        if isinstance(other, Expression):
            if not other.is_constant:
                raise ParameterError("Division by a symbolic expression is not supported.")
            other = other.constant
        if other == 0:
            raise ParameterError("Division of an expression by zero.")
        return self * (1.0 / float(other))

    def __eq__(self, other: object) -> bool:
        if isinstance(other, (int, float)) and not isinstance(other, bool):
            return self.is_constant and self.constant == float(other)
        if not isinstance(other, Expression):
            return NotImplemented
        return self.terms == other.terms and self.constant == other.constant

    def __hash__(self) -> int:
        return hash((self.terms, self.constant))

    # -- evaluation -------------------------------------------------------------------------
    def evaluate(self, values: Mapping[str, float]) -> float:
        """Evaluate with a value for every symbol; raises :class:`UnboundParameterError`."""
        total = self.constant
        for mono, coeff in self.terms:
            prod = coeff
            for s in mono:
                if s not in values:
                    raise UnboundParameterError(
                        f"Symbol {s!r} has no value. Bind it with circuit.bind({{{s!r}: ...}}) "
                        "or pass it in the parameter batch."
                    )
                prod *= check_finite(values[s], f"symbol {s!r}")
            total += prod
        return total

    def substitute(self, values: Mapping[str, ParamLike]) -> Expression:
        """Replace some symbols by numbers or other expressions (partial binding)."""
        out = Expression((), self.constant)
        for mono, coeff in self.terms:
            prod: Expression = Expression((), coeff)
            for s in mono:
                prod = prod * (Expression.coerce(values[s]) if s in values else Parameter(s))
            out = out + prod
        return out

    def derivative(self, symbol: str) -> Expression:
        """The partial derivative with respect to ``symbol``."""
        d: dict[Monomial, float] = {}
        const = 0.0
        for mono, coeff in self.terms:
            k = mono.count(symbol)
            if k == 0:
                continue
            rest = list(mono)
            rest.remove(symbol)
            m = tuple(rest)
            if m:
                d[m] = d.get(m, 0.0) + coeff * k
            else:
                const += coeff * k
        return Expression._from_dict(d, const)

    def evaluate_batch(
        self, values: npt.NDArray[np.float64], index: Mapping[str, int]
    ) -> npt.NDArray[np.float64]:
        """Evaluate for a batch: ``values[:, index[name]]`` holds each symbol's values."""
        out = np.full(values.shape[:-1], self.constant, dtype=values.dtype)
        for mono, coeff in self.terms:
            prod = np.full(values.shape[:-1], coeff, dtype=values.dtype)
            for s in mono:
                prod = prod * values[..., index[s]]
            out = out + prod
        return out

    # -- display ----------------------------------------------------------------------------
    def __repr__(self) -> str:
        return f"Expression({self})"

    def __str__(self) -> str:
        parts = []
        for mono, coeff in self.terms:
            body = "*".join(mono)
            if coeff == 1.0:
                parts.append(body)
            elif coeff == -1.0:
                parts.append(f"-{body}")
            else:
                parts.append(f"{coeff!r}*{body}")
        if self.constant != 0.0 or not parts:
            parts.append(repr(self.constant))
        return " + ".join(parts).replace("+ -", "- ")

    def to_dict(self) -> dict[str, Any]:
        """JSON-friendly form (used by the JSON schema)."""
        return {
            "constant": self.constant,
            "terms": [{"symbols": list(m), "coeff": c} for m, c in self.terms],
        }

    @staticmethod
    def from_dict(data: Mapping[str, Any]) -> Expression:
        terms: dict[Monomial, float] = {}
        for t in data.get("terms", []):
            mono = tuple(sorted(_check_name(s) for s in t["symbols"]))
            terms[mono] = terms.get(mono, 0.0) + check_finite(t["coeff"], "coefficient")
        return Expression._from_dict(terms, check_finite(data.get("constant", 0.0), "constant"))


class Parameter(Expression):
    """A named symbol: a trainable weight or a data input.

    >>> Parameter("w_0") * Parameter("x_0")
    Expression(w_0*x_0)
    """

    def __init__(self, name: str) -> None:
        _check_name(name)
        super().__init__(terms=(((name,), 1.0),), constant=0.0)

    @property
    def name(self) -> str:
        return self.terms[0][0][0]

    def __repr__(self) -> str:
        return f"Parameter({self.name!r})"

    def __reduce__(self) -> tuple[type[Parameter], tuple[str]]:
        return (Parameter, (self.name,))


def symbols(names: str | Iterable[str]) -> tuple[Parameter, ...]:
    """Make several parameters at once: ``symbols('a b c')`` or ``symbols(['a', 'b'])``."""
    if isinstance(names, str):
        names = names.replace(",", " ").split()
    return tuple(Parameter(n) for n in names)
