"""Demos run by ``qstore demo``: ``circuit`` (in :mod:`qstore.core.cli`) and ``fashion-mnist``
(:mod:`qstore.core.demos.fashion_mnist`, which needs qstore-tf or qstore-torch)."""
