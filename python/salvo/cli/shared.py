"""What several ``salvo`` commands share: messages on stderr, the versions and device name
they record, and the check of an output folder."""

from __future__ import annotations

import os
import platform
import sys
import uuid
from pathlib import Path

import numpy as np
import openvino
from tqdm import tqdm

from salvo._info import __version__
from salvo.errors import UsageError
from salvo.inference import get_core

__all__ = ["check_writable_folder", "device_name", "say", "versions"]


def say(message: str) -> None:
    """Write ``message`` as a line on stderr without breaking a progress bar."""
    tqdm.write(message, file=sys.stderr)


def versions() -> dict[str, str]:
    """The versions a run records: ``salvo``, ``openvino``, ``numpy`` and ``python``."""
    return {"salvo": __version__, "openvino": openvino.get_version(), "numpy": np.__version__,
            "python": platform.python_version()}


def device_name(device: str) -> str:
    """OpenVINO's ``FULL_DEVICE_NAME`` of ``device`` (``"GPU.1"`` → the second GPU's name), or
    ``device`` itself for virtual devices (AUTO, MULTI, …) that have none."""
    try:
        return str(get_core().get_property(device.split(":")[0].split(".")[0],
                                           "FULL_DEVICE_NAME"))
    except Exception:  # virtual devices (AUTO, MULTI, …) have none
        return device


def check_writable_folder(folder: Path) -> bool:
    """Check that ``folder`` can be created or written, without creating it.

    Returns
    -------
    bool
        Whether it exists already.

    Raises
    ------
    UsageError
        ``folder`` is a file, is not writable, or cannot be created (its nearest existing
        parent is a file or not writable); the message names ``--out`` and the folder.
    """
    if folder.exists():
        if not folder.is_dir():
            raise UsageError(f"--out '{folder}' exists and is not a folder")
        probe = folder / f".salvo-probe-{uuid.uuid4().hex[:8]}"
        try:
            probe.write_bytes(b"")
            probe.unlink()
        except OSError as exc:
            raise UsageError(f"--out '{folder}' is not writable: {exc.strerror or exc}") from None
        return True
    parent = folder.parent
    while not parent.exists():
        parent = parent.parent
    if not parent.is_dir():
        raise UsageError(f"--out '{folder}': '{parent}' is a file, not a folder")
    if not os.access(parent, os.W_OK | os.X_OK):
        raise UsageError(f"--out '{folder}' cannot be created: '{parent}' is not writable")
    return False
