"""Writing files safely: atomic writes, file names that fit and stay inside their folder, and
a lock that keeps two runs out of one output folder.

Used by :meth:`salvo.Explanation.save`, ``salvo explain`` and ``salvo demo``.

* :func:`atomic_write` writes through a hidden temporary file in the target folder and renames
  it over the final name, so a crash, a kill or a full disk leaves either the old file or the
  complete new one, never a truncated one. The temporary name has a fixed length
  (:data:`TEMP_NAME_LENGTH` characters), so it fits wherever the final name fits.
* :func:`fit_name` shortens a file name that does not fit in :data:`NAME_MAX_BYTES` bytes to a
  readable head plus a hash of the whole name (deterministic: the same name always gives the
  same short name).
* :func:`unique_names` gives every item its own name, whatever names collide.
* :class:`FolderLock` is an advisory lock (``fcntl.flock``; ``msvcrt.locking`` on Windows) on
  a hidden file in a folder, held by one run at a time.
"""

from __future__ import annotations

import errno
import hashlib
import math
import os
import re
import sys
import time
import uuid
import warnings
from collections.abc import Callable, Hashable, Sequence
from pathlib import Path
from typing import Any

from salvo.errors import SalvoWarning

__all__ = [
    "FileNameWarning",
    "FolderBusyError",
    "FolderLock",
    "NAME_MAX_BYTES",
    "TEMP_NAME_LENGTH",
    "UNSAFE_CHARACTERS",
    "atomic_write",
    "check_name_part",
    "fit_name",
    "format_score",
    "is_temporary",
    "remove_temporaries",
    "unique_names",
]

#: Longest file name (in bytes of the file-system encoding) that salvo writes. 255 is the
#: limit of ext4, XFS, btrfs, APFS, NTFS (in UTF-16 units) and tmpfs.
NAME_MAX_BYTES = 255

#: Temporary files are named ``.salvo-<16 hex digits>.tmp``.
_TEMP_RE = re.compile(r"^\.salvo-[0-9a-f]{16}\.tmp$")
#: Temporary names of salvo 0.1 (``.<final name>.<12 hex digits>.tmp``), removed as well.
_LEGACY_TEMP_RE = re.compile(r"^\..+\.[0-9a-f]{12}\.tmp$", re.DOTALL)
TEMP_NAME_LENGTH = len(".salvo-0123456789abcdef.tmp")

#: Characters that separate paths or are not allowed in file names on common systems.
UNSAFE_CHARACTERS = re.compile(r'[\\/:*?"<>|\x00-\x1f\x7f]')
_HASH_LENGTH = 12


class FileNameWarning(SalvoWarning):
    """A file was given another name than the one asked for (two maps would have shared a
    name)."""


class FolderBusyError(RuntimeError):
    """Another process holds the lock of the folder."""


# ------------------------------------------------------------------------------- file names


def _length(name: str) -> int:
    """Length of ``name`` in bytes as the file system stores it."""
    return len(os.fsencode(name))


def check_name_part(value: Any, argument: str) -> str:
    """Check a string that becomes part of a file name, so that the file stays in its folder.

    Parameters
    ----------
    value
        The string (e.g. a ``prefix`` or ``postfix``).
    argument
        Its name, for the error message.

    Returns
    -------
    str
        ``value`` unchanged.

    Raises
    ------
    TypeError
        ``value`` is not a ``str``.
    ValueError
        ``value`` holds a path separator (``/``, ``\\``, the system's ``os.sep`` /
        ``os.altsep``), a NUL character, or is an absolute path or (Windows) a drive: such a
        part could place the file outside its folder.
    """
    if not isinstance(value, str):
        raise TypeError(f"{argument} must be a str, got {type(value).__name__} {value!r}")
    separators = {"/", "\\", os.sep, os.altsep or "/"}
    if any(s in value for s in separators) or "\x00" in value or os.path.isabs(value) or (
        sys.platform == "win32" and ":" in value
    ):
        raise ValueError(
            f"{argument} {value!r} contains a path separator, a NUL or a drive: it is part of "
            "a file name and must not lead out of the folder (give sub-folders in the folder "
            "argument instead)"
        )
    return value


def fit_name(stem: str, suffix: str = "", limit: int = NAME_MAX_BYTES) -> str:
    """``stem + suffix``, shortened deterministically when it is longer than ``limit`` bytes.

    A name that fits is returned unchanged. A longer one becomes ``head~HASH + suffix``:
    ``head`` is the longest start of ``stem`` (whole characters) that fits, ``HASH`` the first
    12 hex digits of the SHA-256 of ``stem + suffix`` (so two long names that share their head
    still differ).

    Parameters
    ----------
    stem
        The name without its suffix.
    suffix
        E.g. ``".jpg"``; always kept.
    limit
        Most bytes (in the file-system encoding, UTF-8 on Linux and macOS).

    Returns
    -------
    str
        A name of at most ``limit`` bytes.

    Raises
    ------
    ValueError
        ``suffix`` alone leaves no room for a short name.
    """
    name = stem + suffix
    if _length(name) <= limit:
        return name
    tag = "~" + hashlib.sha256(os.fsencode(name)).hexdigest()[:_HASH_LENGTH]
    room = limit - _length(suffix) - len(tag)
    if room < 1:
        raise ValueError(f"the suffix {suffix!r} leaves no room for a file name of {limit} bytes")
    head: list[str] = []
    used = 0
    for char in stem:  # whole characters only: a multi-byte character is never split
        size = _length(char)
        if used + size > room:
            break
        head.append(char)
        used += size
    return "".join(head) + tag + suffix


def format_score(score: float) -> str:
    """A score as it goes into a file name: ``f"{score:.2f}"`` for ordinary values,
    ``"nan"``, ``"inf"``, ``"-inf"``, and ``f"{score:.3g}"`` (e.g. ``1e+300``) from 1e6 on."""
    value = float(score)
    if math.isnan(value):
        return "nan"
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    if abs(value) >= 1e6:
        return f"{value:.3g}"
    return f"{value:.2f}"


def unique_names(parts: Sequence[str], keys: Sequence[Hashable],
                 compose: Callable[[int, str], str] | None = None, suffix: str = "",
                 limit: int = NAME_MAX_BYTES) -> tuple[list[str], list[int]]:
    """One file name per item, no two equal (ignoring case, so that case-insensitive file
    systems do not merge them either).

    Item ``i`` is named ``fit_name(compose(i, parts[i]), suffix)``. Items whose names collide
    all get ``_<key>`` appended to their part, repeatedly until no two names collide; keys are
    distinct, so this ends, and the result depends only on the parts and keys (not on their
    order).

    Parameters
    ----------
    parts
        The part of each name that is made unique (e.g. the label name).
    keys
        One distinct key per item (e.g. the target index), used for the disambiguation.
    compose
        ``compose(i, part) -> stem``: the whole name without the suffix (e.g. adds a prefix);
        default: the part itself.
    suffix
        Appended to every name (e.g. ``".jpg"``).
    limit
        Most bytes of a name (longer ones are shortened by :func:`fit_name`).

    Returns
    -------
    names : list of str
        The file names, in item order.
    renamed : list of int
        Positions of the items whose part had to be extended because of a collision.
    """
    if len(parts) != len(keys) or len(set(keys)) != len(keys):
        raise ValueError("unique_names needs one distinct key per part")
    build = compose or (lambda i, part: part)
    current = list(parts)
    renamed: set[int] = set()
    for _ in range(len(current) + 1):
        names = [fit_name(build(i, part), suffix, limit) for i, part in enumerate(current)]
        groups: dict[str, list[int]] = {}
        for i, name in enumerate(names):
            groups.setdefault(name.casefold(), []).append(i)
        clashes = [i for group in groups.values() if len(group) > 1 for i in group]
        if not clashes:
            return names, sorted(renamed)
        for i in clashes:
            current[i] = f"{current[i]}_{keys[i]}"
            renamed.add(i)
    raise AssertionError("unique_names did not converge")  # pragma: no cover - keys distinct


def warn_renamed(old: Sequence[str], new: Sequence[str], stacklevel: int = 3) -> None:
    """A :class:`FileNameWarning` listing names that were changed (at most 5 shown)."""
    pairs = [f"{a!r} -> {b!r}" for a, b in zip(old, new)]
    shown = ", ".join(pairs[:5]) + (f" and {len(pairs) - 5} more" if len(pairs) > 5 else "")
    warnings.warn(
        f"{len(pairs)} saliency map file name(s) would have been shared by several maps and "
        f"were made unique with the target index: {shown}",
        FileNameWarning,
        stacklevel=stacklevel,
    )


# ---------------------------------------------------------------------------- atomic writes


def temporary_name() -> str:
    """A fresh hidden temporary file name (``.salvo-<16 hex>.tmp``, fixed length)."""
    return f".salvo-{uuid.uuid4().hex[:16]}.tmp"


def is_temporary(name: str) -> bool:
    """Whether ``name`` is a temporary file name salvo writes (or salvo 0.1 wrote)."""
    return bool(_TEMP_RE.match(name) or _LEGACY_TEMP_RE.match(name))


def atomic_write(path: str | os.PathLike[str], data: bytes | bytearray | memoryview, *,
                 durable: bool = False, mode: int = 0o666) -> Path:
    """Write ``data`` to ``path`` through a temporary file in the same folder and a rename.

    A crash or a kill leaves either the previous file (or none) or the complete new one; on
    an error (e.g. a full disk) the temporary file is removed and the error is raised with the
    path in its message. The file is created with ``mode`` minus the process umask
    (``-rw-r--r--`` with the usual umask 022), like any file the user creates.

    Parameters
    ----------
    path
        Final file; its folder must exist.
    data
        The content.
    durable
        Also ``fsync`` the file before the rename (survives a power loss, not only a crash).
    mode
        Permission bits before the umask.

    Returns
    -------
    pathlib.Path
        ``path``.

    Raises
    ------
    OSError
        The write or the rename failed (the subclass matches the error: ``PermissionError``,
        ``IsADirectoryError``, …; ``errno`` is kept). The message names ``path``.
    """
    path = Path(path)
    tmp = path.parent / temporary_name()
    flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | getattr(os, "O_CLOEXEC", 0) | getattr(
        os, "O_BINARY", 0)
    try:
        fd = os.open(tmp, flags, mode)
    except OSError as exc:
        raise _named(exc, path) from exc
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            if durable:
                handle.flush()
                os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException as exc:
        try:
            os.unlink(tmp)
        except OSError:
            pass
        if isinstance(exc, OSError):
            raise _named(exc, path) from exc
        raise
    return path


def _named(exc: OSError, path: Path) -> OSError:
    """An error of the same class and errno as ``exc`` whose message names ``path``."""
    if exc.errno is not None:
        reason = exc.strerror or os.strerror(exc.errno)
        if exc.errno == errno.ENOSPC:
            reason += " (nothing was written: no partial file is left)"
        try:
            return type(exc)(exc.errno, f"cannot write '{path}': {reason}")
        except TypeError:  # an OSError subclass with another constructor
            return OSError(exc.errno, f"cannot write '{path}': {reason}")
    try:
        return type(exc)(f"cannot write '{path}': {exc}")
    except TypeError:
        return OSError(f"cannot write '{path}': {exc}")


def remove_temporaries(folder: str | os.PathLike[str], recursive: bool = True) -> list[Path]:
    """Remove salvo's temporary files left in ``folder`` by a killed run.

    Only call this while no other process writes into ``folder`` (e.g. holding its
    :class:`FolderLock`). Symbolic links to folders are not followed.

    Returns
    -------
    list of pathlib.Path
        The files removed.
    """
    removed: list[Path] = []
    stack = [Path(folder)]
    while stack:
        current = stack.pop()
        try:
            entries = list(os.scandir(current))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.is_dir(follow_symlinks=False):
                    if recursive:
                        stack.append(Path(entry.path))
                elif is_temporary(entry.name) and entry.is_file(follow_symlinks=False):
                    os.unlink(entry.path)
                    removed.append(Path(entry.path))
            except OSError:
                continue
    return removed


# ------------------------------------------------------------------------------------ locks


class FolderLock:
    """An exclusive advisory lock on ``folder/name``, held by one process at a time.

    ``acquire()`` never waits: when another process holds the lock it raises
    :class:`FolderBusyError` naming the lock file and what its holder wrote into it (its pid
    and command). The operating system drops the lock when the process ends, however it ends,
    so a killed run never leaves a stale lock. ``release(remove=True)`` deletes the lock file
    while still holding it; ``acquire()`` checks that the file it locked is still the one at
    the path, so the deletion cannot let two processes in.

    Parameters
    ----------
    folder
        An existing folder.
    name
        File name of the lock (hidden by default).
    description
        What the holder writes into the lock file, shown to a refused process.
    """

    def __init__(self, folder: str | os.PathLike[str], name: str = ".salvo.lock",
                 description: str = "") -> None:
        self.path = Path(folder) / name
        self.description = description
        self._fd: int | None = None

    def acquire(self) -> FolderLock:
        """Take the lock or raise :class:`FolderBusyError`."""
        for _ in range(100):
            fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o666)
            try:
                _lock(fd)
            except BlockingIOError:
                holder = _read_holder(fd)
                os.close(fd)
                raise FolderBusyError(
                    f"'{self.path.parent}' is in use by another salvo run"
                    f"{f' ({holder})' if holder else ''}: it holds the lock file "
                    f"'{self.path}'. Wait for that run to finish, or write into another folder"
                ) from None
            except BaseException:
                os.close(fd)
                raise
            try:
                same = os.path.samestat(os.fstat(fd), os.stat(self.path))
            except FileNotFoundError:
                same = False
            if not same:  # the holder removed the file after we opened it: try again
                os.close(fd)
                continue
            self._fd = fd
            text = f"pid {os.getpid()}, since {time.strftime('%Y-%m-%d %H:%M:%S')}"
            if self.description:
                text += f", {self.description}"
            os.ftruncate(fd, 0)
            os.write(fd, (text + "\n").encode("utf-8", errors="replace"))
            return self
        raise FolderBusyError(f"could not lock '{self.path}'")  # pragma: no cover

    def release(self, remove: bool = False) -> None:
        """Release the lock; with ``remove``, delete the lock file first (while still held)."""
        if self._fd is None:
            return
        try:
            if remove:
                try:
                    os.unlink(self.path)
                except OSError:
                    pass
            _unlock(self._fd)
        finally:
            os.close(self._fd)
            self._fd = None

    @property
    def held(self) -> bool:
        """Whether this object holds the lock."""
        return self._fd is not None

    def __enter__(self) -> FolderLock:
        return self.acquire()

    def __exit__(self, *exc: Any) -> None:
        self.release()


def _read_holder(fd: int) -> str:
    try:
        os.lseek(fd, 0, os.SEEK_SET)
        return os.read(fd, 500).decode("utf-8", errors="replace").strip()
    except OSError:
        return ""


if sys.platform == "win32":  # pragma: no cover - not tested on this platform
    import msvcrt

    def _lock(fd: int) -> None:
        try:
            msvcrt.locking(fd, msvcrt.LK_NBLCK, 1)
        except OSError as exc:
            raise BlockingIOError(str(exc)) from exc

    def _unlock(fd: int) -> None:
        os.lseek(fd, 0, os.SEEK_SET)
        msvcrt.locking(fd, msvcrt.LK_UNLCK, 1)

else:
    import fcntl

    def _lock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)

    def _unlock(fd: int) -> None:
        fcntl.flock(fd, fcntl.LOCK_UN)
