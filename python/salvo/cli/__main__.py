"""``python -m salvo.cli``: the same as the ``salvo`` command."""

from __future__ import annotations

from salvo.cli import main

if __name__ == "__main__":
    raise SystemExit(main())
