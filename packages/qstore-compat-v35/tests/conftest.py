from __future__ import annotations

from collections.abc import Iterator

import pytest

from qstore.compat.v3_5 import _deprecation


@pytest.fixture(autouse=True)
def fresh_warnings() -> Iterator[None]:
    """Every test sees each one-time warning again."""
    _deprecation.reset()
    yield
    _deprecation.reset()
