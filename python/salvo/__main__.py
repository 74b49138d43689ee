"""``python -m salvo``: the same as the ``salvo`` command (see :mod:`salvo.cli`)."""

from __future__ import annotations

from salvo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
