"""Pinecone as a Q-Store quantum state store (``qc.stores.open("pinecone", ...)``).

>>> from qstore.pinecone import dimension_for
>>> dimension_for(3)
16

:class:`PineconeStateStore` keeps states in a Pinecone index and answers fidelity queries
exactly (the same top-k as the ``local`` store); :func:`create_index` makes an index of the
right dimension and metric; :mod:`qstore.pinecone.testing` emulates the API for tests, also as a
server: ``qstore pinecone emulator --port 5080``.
"""

from __future__ import annotations

from qstore.pinecone.store import MAX_QUBITS, PineconeStateStore, create_index, dimension_for

__all__ = ["MAX_QUBITS", "PineconeStateStore", "create_index", "dimension_for"]
