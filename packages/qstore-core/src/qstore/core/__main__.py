"""``python -m qstore.core``: the ``qstore`` command."""

from qstore.core.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
