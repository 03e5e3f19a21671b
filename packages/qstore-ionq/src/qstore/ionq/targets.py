"""IonQ targets and their prices, as data.

:data:`TARGETS` describes every target the backends know (qubits, native two-qubit gates, noise
models, shot limit); :data:`PRICES` is the price table read from ``prices.json`` shipped with the
package. Both are examples of IonQ's published figures, not a contract: pass your own
:class:`PriceTable` to :class:`~qstore.ionq.IonQBackend` (``price_table=``) or update
:data:`PRICES` in place when IonQ's prices change.

>>> PRICES.estimate("qpu.aria-1", shots=100, n_1q=10, n_2q=2)  # the $1 minimum applies
1.0
>>> round(PRICES.estimate("qpu.aria-1", shots=1000, n_1q=100, n_2q=50), 2)
71.0
>>> PRICES.estimate("simulator", shots=1000, n_1q=100, n_2q=50)
0.0
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, MutableMapping
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any

from qstore.ionq.errors import IonQConfigError

__all__ = [
    "NOISE_MODELS",
    "PRICES",
    "TARGETS",
    "Price",
    "PriceTable",
    "Target",
    "get_target",
    "two_qubit_equivalents",
]


@dataclass(frozen=True)
class Target:
    """What one IonQ target offers.

    ``qubits`` is the ideal size for the simulator; with a noise model the simulator has the
    modelled QPU's size (:meth:`max_qubits`).
    """

    name: str
    qubits: int
    native_2q: tuple[str, ...] = ("MS",)
    noise_models: tuple[str, ...] = ()
    max_shots: int | None = 10_000

    @property
    def is_simulator(self) -> bool:
        return self.name == "simulator"

    @property
    def has_zz(self) -> bool:
        return "ZZ" in self.native_2q

    def max_qubits(self, noise_model: str | None = None) -> int:
        if self.is_simulator and noise_model not in (None, "ideal"):
            return TARGETS[f"qpu.{noise_model}"].qubits
        return self.qubits


_FORTE = ("MS", "ZZ")
TARGETS: dict[str, Target] = {
    t.name: t
    for t in (
        Target("simulator", 29, ("MS", "ZZ"), ("ideal", "aria-1", "aria-2", "forte-1"), None),
        Target("qpu.aria-1", 25),
        Target("qpu.aria-2", 25),
        Target("qpu.forte-1", 36, _FORTE),
        Target("qpu.forte-enterprise-1", 36, _FORTE),
        Target("qpu.forte-enterprise-2", 36, _FORTE),
        Target("qpu.forte-enterprise-3", 36, _FORTE),
    )
}
"""Known targets (IONQ.md); add entries for new systems."""

NOISE_MODELS = ("ideal", "aria-1", "aria-2", "forte-1")


def get_target(name: str) -> Target:
    """The :class:`Target` called ``name`` (``'simulator'``, ``'qpu.aria-1'`` ...).

    >>> get_target("qpu.forte-1").has_zz
    True
    """
    key = str(name).strip().lower()
    if key in TARGETS:
        return TARGETS[key]
    if f"qpu.{key}" in TARGETS:
        return TARGETS[f"qpu.{key}"]
    raise IonQConfigError(
        f"Unknown IonQ target {name!r}; choose one of {sorted(TARGETS)} (or add it to "
        "qstore.ionq.TARGETS)."
    )


def two_qubit_equivalents(n_qubits_in_gate: int) -> int:
    """How many two-qubit gates a gate on ``n`` qubits is priced as (``6(n-2)`` from 3 on)."""
    if n_qubits_in_gate <= 1:
        return 0
    if n_qubits_in_gate == 2:
        return 1
    return 6 * (n_qubits_in_gate - 2)


@dataclass(frozen=True)
class Price:
    """US dollars per one-qubit gate-shot, per two-qubit gate-shot, and the minimum per job."""

    price_1q: float
    price_2q: float
    minimum: float = 0.0

    def __post_init__(self) -> None:
        for field_name in ("price_1q", "price_2q", "minimum"):
            value = getattr(self, field_name)
            if not isinstance(value, (int, float)) or not math.isfinite(value) or value < 0:
                raise IonQConfigError(
                    f"Price.{field_name} must be a finite number >= 0, got {value!r}."
                )

    @property
    def is_free(self) -> bool:
        return self.price_1q == self.price_2q == self.minimum == 0.0


class PriceTable(MutableMapping[str, Price]):
    """Prices per target: ``cost = max(minimum, shots * (price_1q * n_1q + price_2q * n_2q))``.

    A mutable mapping target -> :class:`Price`; load one with :meth:`from_json`.

    >>> table = PriceTable({"qpu.aria-1": Price(0.0003, 0.001, 1.0)})
    >>> table.estimate("qpu.aria-1", shots=100, n_1q=0, n_2q=20_000)
    2000.0
    """

    def __init__(self, prices: Mapping[str, Price] | None = None) -> None:
        self._prices: dict[str, Price] = dict(prices or {})

    @classmethod
    def from_mapping(cls, data: Mapping[str, Any]) -> PriceTable:
        """A table from ``{target: {"price_1q": .., "price_2q": .., "minimum": ..}}``."""
        out = cls()
        for target, entry in data.items():
            if target.startswith("_"):
                continue
            if not isinstance(entry, Mapping):
                raise IonQConfigError(
                    f"The price of {target!r} must be an object with price_1q, price_2q and "
                    f"minimum; got {entry!r}."
                )
            try:
                out[target] = Price(
                    float(entry["price_1q"]),
                    float(entry["price_2q"]),
                    float(entry.get("minimum", 0.0)),
                )
            except KeyError as exc:
                raise IonQConfigError(
                    f"The price of {target!r} lacks {exc.args[0]!r}; give price_1q and price_2q."
                ) from None
        return out

    @classmethod
    def from_json(cls, path: str | Path) -> PriceTable:
        """A table read from a JSON file shaped like the package's ``prices.json``."""
        try:
            data = json.loads(Path(path).read_text(encoding="utf-8"))
        except (OSError, ValueError) as exc:
            raise IonQConfigError(f"Cannot read the price table {str(path)!r}: {exc}") from None
        return cls.from_mapping(data)

    @classmethod
    def default(cls) -> PriceTable:
        """The table shipped with qstore-ionq (``qstore/ionq/prices.json``)."""
        text = resources.files("qstore.ionq").joinpath("prices.json").read_text(encoding="utf-8")
        return cls.from_mapping(json.loads(text))

    def __getitem__(self, target: str) -> Price:
        return self._prices[target]

    def __setitem__(self, target: str, price: Price) -> None:
        if not isinstance(price, Price):
            raise IonQConfigError(f"Prices must be qstore.ionq.Price objects, got {price!r}.")
        self._prices[target] = price

    def __delitem__(self, target: str) -> None:
        del self._prices[target]

    def __iter__(self) -> Iterator[str]:
        return iter(self._prices)

    def __len__(self) -> int:
        return len(self._prices)

    def __repr__(self) -> str:
        return f"PriceTable({self._prices!r})"

    def price(self, target: str) -> Price:
        """The price of ``target``; the simulator is free even when absent from the table."""
        if target in self._prices:
            return self._prices[target]
        if target == "simulator":
            return Price(0.0, 0.0, 0.0)
        raise IonQConfigError(
            f"No price for IonQ target {target!r} in the price table; known: "
            f"{sorted(self._prices)}. Add one: table[{target!r}] = Price(price_1q, price_2q, "
            "minimum)."
        )

    def estimate(self, target: str, shots: int, n_1q: int, n_2q: int) -> float:
        """Cost in US dollars of one job; ``n_1q``/``n_2q`` are summed over its circuits (the
        minimum applies once per job)."""
        p = self.price(target)
        if p.is_free:
            return 0.0
        return max(p.minimum, shots * (p.price_1q * n_1q + p.price_2q * n_2q))


PRICES: PriceTable = PriceTable.default()
"""The default price table (update it in place, or pass ``price_table=`` to a backend)."""
