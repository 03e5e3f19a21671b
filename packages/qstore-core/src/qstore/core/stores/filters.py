"""The metadata filter language of every store: Pinecone's MongoDB subset, one implementation.

Operators ``$eq $ne $gt $gte $lt $lte $in $nin $exists $and $or``. ``{"k": v}`` means
``{"k": {"$eq": v}}``; several keys (or several operators on one key) are AND-ed. A list-valued
field matches ``$eq``/``$in`` when any element matches, ``$ne``/``$nin`` only when none does.
A field that is absent matches ``$ne``, ``$nin`` and ``{"$exists": false}`` and nothing else.
Booleans are not numbers (``{"k": 1}`` does not match ``True``); ``$gt``-type operators compare
numbers only.

The ``local`` store evaluates filters with :func:`compile_filter`, the Pinecone emulator of
``qstore-pinecone`` too, and the ``pinecone`` store validates with :func:`validate_filter`
before sending, so every store reads a filter the same way.

>>> from qstore.core.stores.filters import compile_filter
>>> match = compile_filter({"genre": {"$in": ["drama", "comedy"]}, "year": {"$gte": 2020}})
>>> match({"genre": ["drama", "thriller"], "year": 2021}), match({"genre": "drama", "year": 2019})
(True, False)
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np

from qstore.core.stores.base import FilterError, MetadataValue, StoreInputError

__all__ = [
    "LOGICAL_OPERATORS",
    "MAX_METADATA_BYTES",
    "OPERATORS",
    "Predicate",
    "compile_filter",
    "normalize_metadata",
    "validate_filter",
]

OPERATORS = ("$eq", "$ne", "$gt", "$gte", "$lt", "$lte", "$in", "$nin", "$exists")
"""Field operators of the language."""
LOGICAL_OPERATORS = ("$and", "$or")
"""Operators that combine filters."""
MAX_METADATA_BYTES = 40 * 1024
"""Largest metadata of one record, as compact UTF-8 JSON (Pinecone's limit)."""

Predicate = Callable[[Mapping[str, Any]], bool]
Scalar = str | int | float | bool

_LANGUAGE = "see docs/stores.md, 'Filters'"


def _is_number(v: object) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool)


def _scalar(v: object) -> bool:
    return isinstance(v, str | bool) or (_is_number(v) and math.isfinite(float(v)))  # type: ignore[arg-type]


def _same(a: object, b: object) -> bool:
    """Equality without Python's ``True == 1``."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if _is_number(a) and _is_number(b):
        return float(a) == float(b)  # type: ignore[arg-type]
    return isinstance(a, str) and isinstance(b, str) and a == b


def _where(path: str) -> str:
    return f" at {path}" if path else ""


def _check_operand(op: str, operand: object, path: str) -> None:
    if op in ("$eq", "$ne"):
        if not _scalar(operand):
            raise FilterError(
                f"{op}{_where(path)} needs a string, number or boolean, got {operand!r}; "
                f"use $in for several values ({_LANGUAGE})."
            )
    elif op in ("$gt", "$gte", "$lt", "$lte"):
        if not (_is_number(operand) and math.isfinite(float(operand))):  # type: ignore[arg-type]
            raise FilterError(
                f"{op}{_where(path)} compares numbers only, got {operand!r} "
                f"({type(operand).__name__})."
            )
    elif op in ("$in", "$nin"):
        if (
            not isinstance(operand, list | tuple)
            or not operand
            or not all(_scalar(x) for x in operand)
        ):
            raise FilterError(
                f"{op}{_where(path)} needs a non-empty list of strings, numbers or booleans, "
                f"got {operand!r}."
            )
    elif op == "$exists" and not isinstance(operand, bool):
        raise FilterError(f"$exists{_where(path)} needs true or false, got {operand!r}.")


def _field_predicate(key: str, op: str, operand: Any) -> Predicate:
    if op == "$exists":
        want = bool(operand)
        return lambda md: (key in md) == want
    if op in ("$in", "$nin"):
        values = list(operand)

        def any_in(v: object) -> bool:
            items = v if isinstance(v, list) else [v]
            return any(_same(x, y) for x in items for y in values)

        if op == "$in":
            return lambda md: key in md and any_in(md[key])
        return lambda md: key not in md or not any_in(md[key])
    if op in ("$eq", "$ne"):

        def eq(v: object) -> bool:
            items = v if isinstance(v, list) else [v]
            return any(_same(x, operand) for x in items)

        if op == "$eq":
            return lambda md: key in md and eq(md[key])
        return lambda md: key not in md or not eq(md[key])
    bound = float(operand)
    compare: Callable[[float], bool] = {
        "$gt": lambda x: x > bound,
        "$gte": lambda x: x >= bound,
        "$lt": lambda x: x < bound,
        "$lte": lambda x: x <= bound,
    }[op]
    return lambda md: key in md and _is_number(md[key]) and compare(float(md[key]))


def _all(preds: Sequence[Predicate]) -> Predicate:
    if len(preds) == 1:
        return preds[0]
    return lambda md: all(p(md) for p in preds)


def _compile(f: object, path: str) -> Predicate:
    if not isinstance(f, Mapping):
        raise FilterError(
            f"A filter{_where(path)} must be a dict such as {{'genre': {{'$eq': 'drama'}}}}, "
            f"got {f!r} ({type(f).__name__})."
        )
    preds: list[Predicate] = []
    for key, value in f.items():
        here = f"{path}.{key}" if path else str(key)
        if not isinstance(key, str) or not key:
            raise FilterError(f"Filter keys must be non-empty strings, got {key!r}.")
        if key.startswith("$"):
            if key not in LOGICAL_OPERATORS:
                raise FilterError(
                    f"Unknown operator {key!r}{_where(path)}: at the top of a filter only "
                    f"{', '.join(LOGICAL_OPERATORS)} combine filters; field operators are "
                    f"{', '.join(OPERATORS)} ({_LANGUAGE})."
                )
            if not isinstance(value, list | tuple) or not value:
                raise FilterError(f"{key}{_where(path)} needs a non-empty list of filters.")
            subs = [_compile(sub, f"{here}[{i}]") for i, sub in enumerate(value)]
            if key == "$and":
                preds.append(_all(subs))
            else:
                preds.append(lambda md, subs=subs: any(p(md) for p in subs))  # type: ignore[misc]
            continue
        if isinstance(value, Mapping):
            if not value:
                raise FilterError(f"No operator for field {key!r}; e.g. {{'{key}': {{'$eq': 1}}}}.")
            for op, operand in value.items():
                if op not in OPERATORS:
                    raise FilterError(
                        f"Unknown filter operator {op!r} for field {key!r}; the operators are "
                        f"{', '.join(OPERATORS)} ({_LANGUAGE})."
                    )
                _check_operand(op, operand, here)
                preds.append(_field_predicate(key, op, operand))
        else:
            _check_operand("$eq", value, here)
            preds.append(_field_predicate(key, "$eq", value))
    if not preds:
        return lambda md: True
    return _all(preds)


def compile_filter(f: Mapping[str, Any] | None) -> Predicate:
    """Check ``f`` and turn it into a function ``metadata -> bool``.

    ``None`` and ``{}`` match everything. Raises :class:`FilterError` naming the bad part.

    >>> compile_filter({"$or": [{"a": 1}, {"b": {"$exists": True}}]})({"b": "x"})
    True
    """
    if f is None:
        return lambda md: True
    return _compile(f, "")


def validate_filter(f: Mapping[str, Any] | None) -> dict[str, Any] | None:
    """Check ``f`` (raising :class:`FilterError`) and return it as plain JSON data.

    >>> validate_filter({"year": {"$gte": 2020}})
    {'year': {'$gte': 2020}}
    """
    if f is None:
        return None
    compile_filter(f)
    return _plain(f)  # type: ignore[no-any-return]


def _plain(v: Any) -> Any:
    if isinstance(v, Mapping):
        return {str(k): _plain(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    return _py_scalar(v)


def _py_scalar(v: Any) -> Any:
    if isinstance(v, np.bool_):
        return bool(v)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, np.floating):
        return float(v)
    return v


def _metadata_value(key: str, v: Any, where: str) -> MetadataValue:
    v = _py_scalar(v)
    if isinstance(v, str | bool) or (_is_number(v) and math.isfinite(float(v))):
        return v  # type: ignore[no-any-return]
    if isinstance(v, list | tuple) and all(isinstance(x, str) for x in v):
        return list(v)
    if v is None:
        fix = "leave the key out instead (absent keys match $exists: false)"
    elif _is_number(v):
        fix = "store a finite number"
    else:
        fix = "use a string, a finite number, a boolean or a list of strings"
    raise StoreInputError(
        f"Metadata{where} key {key!r} has value {v!r} ({type(v).__name__}), which the filter "
        f"language cannot hold; {fix}."
    )


def normalize_metadata(md: Mapping[str, Any] | None, where: str = "") -> dict[str, MetadataValue]:
    """Check one record's metadata and return it with NumPy scalars made plain Python.

    Values: strings, finite numbers, booleans, lists of strings; no nulls, no nesting; at most
    :data:`MAX_METADATA_BYTES` as JSON. Raises :class:`StoreInputError` naming the key.

    >>> normalize_metadata({"n": np.int64(3), "tags": ("a", "b")})
    {'n': 3, 'tags': ['a', 'b']}
    """
    if md is None:
        return {}
    if not isinstance(md, Mapping):
        raise StoreInputError(
            f"Metadata{where} must be a dict of str keys, got {type(md).__name__}."
        )
    out: dict[str, MetadataValue] = {}
    for key, v in md.items():
        if not isinstance(key, str) or not key or key.startswith("$"):
            raise StoreInputError(
                f"Metadata{where} key {key!r} is not allowed: keys are non-empty strings that "
                "do not start with '$'."
            )
        out[key] = _metadata_value(key, v, where)
    size = len(json.dumps(out, separators=(",", ":"), ensure_ascii=False).encode())
    if size > MAX_METADATA_BYTES:
        raise StoreInputError(
            f"Metadata{where} is {size} bytes as JSON, over the {MAX_METADATA_BYTES}-byte limit "
            "per record; keep large data elsewhere and store a reference to it."
        )
    return out
