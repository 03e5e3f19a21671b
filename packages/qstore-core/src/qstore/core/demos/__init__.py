"""Demos run by ``qstore demo``: ``circuit`` (in :mod:`qstore.core.cli`, nothing but qstore-core)
and ``fashion-mnist`` (:mod:`qstore.core.demos.fashion_mnist`, trained by the framework
distribution that registers a trainer in the entry-point group ``qstore.demos``: qstore-tf for
Keras, qstore-torch for PyTorch)."""
