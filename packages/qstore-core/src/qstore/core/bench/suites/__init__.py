"""The benchmark suites: ``rw``, ``circuits`` and ``fashion-mnist`` (see :mod:`..runner`)."""
