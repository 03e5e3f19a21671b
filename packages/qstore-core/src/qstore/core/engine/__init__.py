"""The simulation engine, written once for every array library.

- :mod:`.program`: a circuit template compiled once into a :class:`~.program.Program` (fused
  layers, permutation gathers, observables by bit-flip mask).
- :mod:`.binding`: the parameter layer (symbol expressions → gate parameters, and back).
- :mod:`.generic`: the forward pass on :class:`~.generic.ArrayOps` (NumPy, torch, TensorFlow).
- :mod:`.adjoint`: the adjoint backward pass on the same ops.
- :mod:`.memory`: how much memory a simulation may take.
"""
