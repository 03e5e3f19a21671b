"""Keras implementations of the ``qstore demo`` models (see
:mod:`qstore.tf.demos.fashion_mnist`)."""
