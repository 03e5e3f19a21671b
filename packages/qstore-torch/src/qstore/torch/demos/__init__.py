"""PyTorch implementations of the ``qstore demo`` models (see
:mod:`qstore.torch.demos.fashion_mnist`)."""
