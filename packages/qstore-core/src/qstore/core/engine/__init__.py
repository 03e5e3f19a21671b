"""The simulation engine: circuit compilation (:mod:`.program`) and the batched state-vector
simulator with adjoint differentiation (:mod:`.statevector`)."""
