"""The examples in the docstrings of qstore.torch run and print what they say."""

from __future__ import annotations

import doctest
import importlib

import pytest

MODULES = ["__init__", "engine", "encoding", "autograd", "layers", "distributed"]


@pytest.mark.parametrize("name", MODULES)
def test_docstring_examples(name: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for var in ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT"):
        monkeypatch.delenv(var, raising=False)
    module = importlib.import_module(
        "qstore.torch" if name == "__init__" else f"qstore.torch.{name}"
    )
    result = doctest.testmod(module, optionflags=doctest.ELLIPSIS)
    assert result.attempted > 0, f"{module.__name__} has no examples"
    assert result.failed == 0
