"""The images of ``salvo explain``: files, folders and globs → :class:`ImageTask` s, and the
names of their outputs.

Each image is named by its path relative to the folder, glob or file it was given by
(:attr:`ImageTask.name`); :func:`output_place` turns that name into the folder and file-name
prefix of its outputs, so that two inputs never share an output.
"""

from __future__ import annotations

import glob
import os
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path, PurePosixPath
from typing import Any

from salvo.cli.shared import say
from salvo.errors import UsageError
from salvo.files import UNSAFE_CHARACTERS

__all__ = [
    "IMAGE_SUFFIXES",
    "ImageTask",
    "Inputs",
    "expand_inputs",
    "output_place",
    "report_ignored",
    "target_file_label",
]

#: Suffixes taken from folders (explicitly named files are taken whatever their suffix).
IMAGE_SUFFIXES = (".jpg", ".jpeg", ".png", ".bmp", ".tif", ".tiff", ".webp", ".ppm", ".pgm",
                  ".pbm", ".jp2")


@dataclass
class ImageTask:
    """One input file of ``salvo explain``.

    Attributes
    ----------
    path
        The file as found (for messages).
    key
        Its absolute, resolved path: the manifest's key.
    name
        Its path relative to the input root it was found under (a folder given on the command
        line, the fixed part of a glob, or the folder of a file named on the command line), in
        POSIX form. Its outputs are named after it: see :func:`output_place`.
    """

    path: Path
    key: str
    name: str
    info: dict[str, Any] = field(default_factory=dict)

    @property
    def folder(self) -> str:
        """Folder of the outputs, relative to ``--out`` (POSIX form, ``""`` for the top)."""
        return output_place(self.name)[0]

    @property
    def prefix(self) -> str:
        """Start of the output file names: the escaped file name and a dot."""
        return output_place(self.name)[1]


@dataclass
class Inputs:
    """What :func:`expand_inputs` found: the images, the files it passed over and why, and the
    folders without images directly inside that have sub-folders (for a ``--recursive`` hint)."""

    tasks: list[ImageTask]
    ignored: list[tuple[Path, str]] = field(default_factory=list)
    flat_folders: list[tuple[Path, int]] = field(default_factory=list)


#: What :func:`_escape` replaces: ``%`` (the escape character) and the characters not allowed in
#: file names (:data:`salvo.files.UNSAFE_CHARACTERS`).
_ESCAPE = re.compile("%|" + UNSAFE_CHARACTERS.pattern)


def _escape(part: str) -> str:
    """A path component as a file-name part: ``%`` and characters not allowed in file names
    become ``%XX`` (reversible, so different components never give the same part); ``.`` and
    ``..`` become ``%2E`` / ``%2E%2E``."""
    if part in (".", ".."):
        return "%2E" * len(part)
    return _ESCAPE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode()), part)


def output_place(name: str) -> tuple[str, str]:
    """Where the outputs of the input at relative path ``name`` go.

    Returns ``(folder, prefix)``: ``folder`` mirrors the input's folders under ``--out`` and
    the output files are ``prefix + target + ".jpg"`` (``.npy`` for raw maps), ``prefix`` being
    the input's file name (extension included) and a dot, e.g. ``sub/rocket.jpg`` →
    ``("sub", "rocket.jpg.")`` → ``sub/rocket.jpg.missile.jpg``. Target parts hold no dot, so
    the input is the part before the last dot but one: no two inputs share an output.
    """
    parts = PurePosixPath(name).parts
    folder = "/".join(_escape(p) for p in parts[:-1])
    return folder, _escape(parts[-1]) + "."


def target_file_label(name: str) -> str:
    """A label as the target part of an output name: whitespace and dots become ``_``."""
    return re.sub(r"[\s.]+", "_", name.strip())


def _glob_root(pattern: str) -> str:
    """The folder part of a glob before its first wildcard (``.`` if none)."""
    parts = Path(pattern).parts
    fixed: list[str] = []
    for part in parts[:-1]:
        if glob.has_magic(part):
            break
        fixed.append(part)
    return os.path.join(*fixed) if fixed else "."


def _relative_name(path: str, root: str) -> str:
    rel = os.path.relpath(os.path.normpath(path), os.path.normpath(root))
    parts = Path(rel).parts
    if not parts or parts[0] == ".." or os.path.isabs(rel):
        return Path(path).name
    return PurePosixPath(*parts).as_posix()


def _inside(path: str, folder_real: str) -> bool:
    real = os.path.realpath(path)
    return real == folder_real or real.startswith(folder_real.rstrip(os.sep) + os.sep)


def _walk(root: Path, recursive: bool, out_real: str, inputs: Inputs) -> list[tuple[str, str]]:
    """Image files under ``root`` as ``(path, name relative to root)``, sorted by name.

    Hidden files and folders are passed over; other files whose suffix is not an image suffix
    are listed in ``inputs.ignored``; the output folder is never entered; symbolic links to
    folders are followed once (a loop ends at the first folder seen again)."""
    found: list[tuple[str, str]] = []
    seen: set[tuple[int, int]] = set()
    stack: list[tuple[str, str]] = [(str(root), "")]
    while stack:
        folder, rel = stack.pop()
        try:
            st = os.stat(folder)
        except OSError as exc:
            inputs.ignored.append((Path(folder), f"cannot read the folder: {exc.strerror}"))
            continue
        if (st.st_dev, st.st_ino) in seen:
            continue  # a symbolic-link loop, or a folder reached twice
        seen.add((st.st_dev, st.st_ino))
        try:
            entries = sorted(os.scandir(folder), key=lambda e: e.name)
        except OSError as exc:
            inputs.ignored.append((Path(folder), f"cannot read the folder: {exc.strerror}"))
            continue
        subfolders = 0
        images_here = 0
        for entry in entries:
            if entry.name.startswith("."):
                continue
            name = f"{rel}/{entry.name}" if rel else entry.name
            try:
                is_dir = entry.is_dir()
                is_file = not is_dir and entry.is_file()
            except OSError:
                continue
            if is_dir:
                if out_real and _inside(entry.path, out_real):
                    continue  # the output folder inside the input tree
                subfolders += 1
                if recursive:
                    stack.append((entry.path, name))
            elif is_file:  # (the output folder is never entered, so no file is inside it)
                if Path(entry.name).suffix.lower() in IMAGE_SUFFIXES:
                    found.append((entry.path, name))
                    images_here += 1
                else:
                    suffix = Path(entry.name).suffix.lower() or "no suffix"
                    inputs.ignored.append((Path(entry.path), f"not an image suffix ({suffix})"))
        if not recursive and not images_here and subfolders:
            inputs.flat_folders.append((root, subfolders))
    return sorted(found, key=lambda item: item[1])


def expand_inputs(items: Sequence[str], recursive: bool, out: Path | None = None) -> Inputs:
    """Files, folders (their image files) and globs → the images to explain, in order.

    Each image is named by its path relative to the folder it was found in (a folder given
    on the command line, the fixed part of a glob, or its own folder for a file named
    explicitly); its outputs are named after that (:func:`output_place`). The same file
    reached twice is taken once. Files inside ``out`` are never read from folders or globs.

    Raises
    ------
    UsageError
        A missing file or folder, a glob that matches nothing, ``out`` being an input folder,
        no image at all (with a ``--recursive`` hint when folders only hold sub-folders), or
        two inputs that would share their outputs.
    """
    out_real = os.path.realpath(out) if out is not None else ""
    inputs = Inputs([])
    found: list[tuple[str, str]] = []
    for item in items:
        path = Path(item)
        if path.is_dir():
            if out_real and os.path.realpath(path) == out_real:
                raise UsageError(f"--out '{out}' is the input folder '{item}': its maps would be "
                                 "read back as images by the next run; choose another --out")
            files = _walk(path, recursive, out_real, inputs)
            if not files:
                hint = next((f" (it has {n} sub-folder{'s' * (n > 1)}: add --recursive to "
                             "explain the images in them)" for p, n in inputs.flat_folders
                             if p == path), "")
                say(f"salvo: warning: no image files in folder '{path}'{hint}")
            found.extend(files)
        elif path.is_file():
            found.append((str(path), path.name))
        elif glob.has_magic(item):
            root = _glob_root(item)
            matches = sorted(p for p in glob.glob(item, recursive=True) if Path(p).is_file()
                             and not (out_real and _inside(p, out_real)))
            if not matches:
                raise UsageError(f"no file matches {item!r}")
            found.extend((p, _relative_name(p, root)) for p in matches)
        else:
            raise UsageError(f"no such file or folder: '{item}'")
    by_key: dict[str, ImageTask] = {}
    for p, name in found:
        key = os.path.realpath(p)
        by_key.setdefault(key, ImageTask(Path(p), key, name))
    tasks = list(by_key.values())
    if not tasks:
        if inputs.flat_folders:
            folder, n = inputs.flat_folders[0]
            raise UsageError(f"no images to explain: '{folder}' holds no image files, only "
                             f"{n} sub-folder{'s' * (n > 1)}; add --recursive to explain the "
                             "images in them")
        skipped = f" ({len(inputs.ignored)} file(s) skipped, see above)" if inputs.ignored else ""
        raise UsageError(f"no images to explain{skipped}")
    by_name: dict[str, list[ImageTask]] = {}
    for t in tasks:
        by_name.setdefault(output_place(t.name)[0] + "/" + output_place(t.name)[1], []).append(t)
    clashes = [group for group in by_name.values() if len(group) > 1]
    if clashes:
        shown = "; ".join(" and ".join(f"'{t.path}'" for t in group[:3]) for group in clashes[:3])
        raise UsageError(
            f"inputs would write the same outputs: {shown} (outputs are named after the path "
            "relative to the folder, glob or file given); give their common folder with "
            "--recursive, or explain them into separate --out folders"
        )
    inputs.tasks = tasks
    return inputs


def report_ignored(ignored: Sequence[tuple[Path, str]]) -> None:
    """Say which files in the input folders were passed over and why (at most 10 named)."""
    if not ignored:
        return
    shown = ", ".join(f"'{p}' ({why})" for p, why in ignored[:10])
    more = f" and {len(ignored) - 10} more (all in manifest.json)" if len(ignored) > 10 else ""
    say(f"salvo: note: {len(ignored)} file(s) in the input folders skipped: {shown}{more}. "
         f"Folders are read for {' '.join(IMAGE_SUFFIXES)}; name a file explicitly to try it "
         "anyway")
