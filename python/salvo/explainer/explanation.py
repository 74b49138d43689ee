"""The result of an explanation: processed saliency maps plus what they explain.

:class:`Explanation` only holds, saves and shows maps; the maps are computed by the methods
and post-processed by :mod:`salvo.explainer.visualizer` before the Explainer builds the object.
"""

from __future__ import annotations

import logging
import math
import os
import sys
import warnings
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np

from salvo.common import Method, Task
from salvo.methods.base import Prediction
from salvo.errors import PlotWarning
from salvo.explainer.visualizer import PER_IMAGE_MAP_KEY, normalise_target_key, scale_to_uint8

logger = logging.getLogger(__name__)

__all__ = ["Explanation", "Prediction"]

_PLOT_BACKENDS = ("matplotlib", "cv")


def _opencv_gui() -> str:
    """The GUI backend OpenCV was built with (``"NONE"`` for headless builds)."""
    import cv2

    for line in cv2.getBuildInformation().splitlines():
        key, _, value = line.strip().partition(":")
        if key.strip() == "GUI":
            return value.strip() or "NONE"
    return "UNKNOWN"


def _check_cv_display() -> None:
    """Raise instead of letting ``cv2.imshow`` abort the process on a machine without display."""
    alternative = (
        'use backend="matplotlib" (with a non-interactive matplotlib backend it draws '
        "without showing), or save() the maps"
    )
    gui = _opencv_gui()
    if gui.upper() in ("NONE", "NO"):
        raise RuntimeError(
            "Explanation.plot(backend='cv') needs OpenCV's GUI (highgui), but this OpenCV was "
            f"built without one (opencv-python-headless?); {alternative}"
        )
    if sys.platform.startswith(("linux", "freebsd", "openbsd", "netbsd")):
        qpa = os.environ.get("QT_QPA_PLATFORM", "").split(":")[0].strip().lower()
        offscreen = gui.upper().startswith("QT") and qpa in ("offscreen", "minimal", "vnc",
                                                             "eglfs", "linuxfb")
        if not (os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY") or offscreen):
            raise RuntimeError(
                "Explanation.plot(backend='cv') needs a display to open windows, but neither "
                f"DISPLAY nor WAYLAND_DISPLAY is set (a headless machine?); {alternative}"
            )


def _to_uint8(saliency_map: np.ndarray) -> np.ndarray:
    """A map as uint8 for writing or showing: uint8 kept, 0..255 integers cast, else min-max."""
    arr = np.asarray(saliency_map)
    if arr.dtype == np.uint8:
        return arr
    if np.issubdtype(arr.dtype, np.integer) and arr.size and arr.min() >= 0 and arr.max() <= 255:
        return arr.astype(np.uint8)
    return scale_to_uint8(arr)


def _to_bgr_uint8(saliency_map: np.ndarray, target: int | str) -> np.ndarray:
    """``(H, W)`` grey stays grey; ``(H, W, 3)`` RGB becomes BGR (OpenCV's order), uint8."""
    arr = np.asarray(saliency_map)
    if arr.ndim == 3 and arr.shape[2] == 1:
        arr = arr[:, :, 0]
    if arr.ndim == 2:
        return np.ascontiguousarray(_to_uint8(arr))
    if arr.ndim == 3 and arr.shape[2] == 3:
        return np.ascontiguousarray(_to_uint8(arr)[:, :, ::-1])
    raise ValueError(
        f"saliency map of target {target!r} must be (H, W) grey or (H, W, 3) RGB to be saved "
        f"or shown, got shape {arr.shape}"
    )


class Explanation:
    """Processed saliency maps of one input and what they explain.

    Parameters
    ----------
    saliency_map
        ``{target: map}``. Keys are class indices (or box indices for detection) as ints,
        or ``"per_image_map"`` for ActivationMap's class-agnostic map. Maps are ``(H, W)``
        grey (uint8 after scaling, or raw float/uint8) or ``(H, W, 3)`` uint8 RGB.
    targets
        The keys, in the order to report, save and plot them; defaults to the dict's order.
        Must name exactly the dict's keys.
    task
        :class:`salvo.common.Task` (or its value).
    label_names
        Class names indexed by class index (a list of str, or an ``{index: name}`` dict);
        used for file names and plot titles (classification).
    predictions
        ``{target: Prediction(label, score, bounding_box)}``; tuples are converted.
    num_inferences
        Model inferences the explanation used.
    method
        :class:`salvo.common.Method` that produced the maps, if known.

    Attributes
    ----------
    saliency_map : dict
        ``{target: map}`` (settable; keys are re-validated).
    targets : list
        Keys as plain Python ints, or ``"per_image_map"``.
    shape : tuple or None
        Shape of one map (``None`` when there are no maps).
    label_names, task, predictions, num_inferences, method
        As given.
    """

    def __init__(
        self,
        saliency_map: Mapping[Any, np.ndarray],
        targets: Sequence[int | str] | None = None,
        task: Task | str = Task.CLASSIFICATION,
        label_names: Sequence[str] | None = None,
        predictions: Mapping[Any, Prediction | tuple] | None = None,
        num_inferences: int = 0,
        method: Method | str | None = None,
    ) -> None:
        self._task = task if isinstance(task, Task) else Task(task)
        self._method = method if method is None or isinstance(method, Method) else Method(method)
        from salvo.common.targets import check_label_names

        self._label_names: list[str] | None = check_label_names(label_names)
        if isinstance(num_inferences, (bool, np.bool_)) or not isinstance(
            num_inferences, (int, np.integer)
        ):
            raise TypeError(f"num_inferences must be an int, got {num_inferences!r}")
        if num_inferences < 0:
            raise ValueError(f"num_inferences must be >= 0, got {num_inferences}")
        self._num_inferences = int(num_inferences)
        self._predictions: dict[int | str, Prediction] = {}
        for key, value in (predictions or {}).items():
            pred = value if isinstance(value, Prediction) else Prediction(*value)
            self._predictions[normalise_target_key(key, "predictions keys")] = pred
        self._saliency_map: dict[int | str, np.ndarray] = {}
        self._set_maps(saliency_map, targets)

    # ------------------------------------------------------------------------------ data

    def _set_maps(self, saliency_map: Mapping[Any, np.ndarray], targets: Any) -> None:
        if not isinstance(saliency_map, Mapping):
            raise TypeError(
                f"saliency_map must be a dict {{target: map}}, got {type(saliency_map).__name__}"
            )
        maps = {
            normalise_target_key(key, "saliency_map keys"): np.asarray(value)
            for key, value in saliency_map.items()
        }
        if len(maps) != len(saliency_map):
            raise ValueError(
                "saliency_map has keys that are equal as ints (e.g. 3 and np.int64(3))"
            )
        if targets is None:
            order = list(maps)
        else:
            order = [normalise_target_key(t, "targets") for t in targets]
            if len(set(order)) != len(order) or set(order) != set(maps):
                raise ValueError(
                    f"targets {order[:10]} must name exactly the keys of saliency_map "
                    f"{list(maps)[:10]}"
                )
        self._saliency_map = {key: maps[key] for key in order}

    @property
    def saliency_map(self) -> dict[int | str, np.ndarray]:
        """``{target: map}``; see the class docstring."""
        return self._saliency_map

    @saliency_map.setter
    def saliency_map(self, value: Mapping[Any, np.ndarray]) -> None:
        self._set_maps(value, None)

    @property
    def targets(self) -> list[int | str]:
        """Keys of :attr:`saliency_map` (plain ints, or ``"per_image_map"``)."""
        return list(self._saliency_map)

    @property
    def shape(self) -> tuple[int, ...] | None:
        """Shape of one map, e.g. ``(224, 224, 3)``; ``None`` without maps."""
        for value in self._saliency_map.values():
            return tuple(value.shape)
        return None

    @property
    def label_names(self) -> list[str] | None:
        """Class names indexed by class index, if given."""
        return self._label_names

    @property
    def task(self) -> Task:
        """The model's task."""
        return self._task

    @property
    def predictions(self) -> dict[int | str, Prediction]:
        """``{target: Prediction(label, score, bounding_box)}`` (may be empty)."""
        return self._predictions

    @property
    def num_inferences(self) -> int:
        """Model inferences this explanation used."""
        return self._num_inferences

    @property
    def method(self) -> Method | None:
        """The method that produced the maps, if known."""
        return self._method

    def __len__(self) -> int:
        return len(self._saliency_map)

    def __repr__(self) -> str:
        targets = self.targets
        shown = ", ".join(repr(t) for t in targets[:5])
        if len(targets) > 5:
            shown += f", ... ({len(targets)} maps)"
        method = self._method.value if self._method is not None else None
        return (
            f"Explanation(task={self._task.value}, method={method}, targets=[{shown}], "
            f"shape={self.shape}, num_inferences={self._num_inferences})"
        )

    # ------------------------------------------------------------------------------ names

    def _name(self, target: int | str) -> str:
        """File-name part for a target: label name, index, or ``activation_map``."""
        if target == PER_IMAGE_MAP_KEY:
            return "activation_map"
        names = self._label_names
        classification = self._task is Task.CLASSIFICATION
        if names is not None and classification and 0 <= int(target) < len(names):
            return names[int(target)]
        return str(target)

    def _title(self, target: int | str) -> str:
        if target == PER_IMAGE_MAP_KEY:
            return "Activation map"
        name = self._name(target)
        return f"Class {name} ({target})" if name != str(target) else f"Class {target}"

    def _select(self, targets: Any) -> list[int | str]:
        """Plot targets: None (all), one key / label name, or a list of them."""
        if targets is None:
            return self.targets
        if isinstance(targets, (str, int, np.integer)):
            targets = [targets]
        elif isinstance(targets, np.ndarray):
            targets = targets.ravel().tolist()
        elif not isinstance(targets, Iterable):
            raise TypeError(f"targets must be an index, a label name or a list, got {targets!r}")
        selected: list[int | str] = []
        unknown: list[Any] = []
        for t in targets:
            key: Any = t
            if isinstance(t, str) and t != PER_IMAGE_MAP_KEY:
                if self._label_names is not None and t in self._label_names:
                    key = self._label_names.index(t)
                else:
                    unknown.append(t)
                    continue
            elif isinstance(t, (int, np.integer)) and not isinstance(t, (bool, np.bool_)):
                key = int(t)
            if key in self._saliency_map:
                if key not in selected:
                    selected.append(key)
            else:
                unknown.append(t)
        if unknown:
            raise ValueError(
                f"targets {unknown} are not in this explanation (it has {self.targets[:10]}"
                f"{' ...' if len(self) > 10 else ''})"
            )
        return selected

    # ------------------------------------------------------------------------------ save

    def save(
        self,
        dir_path: str | os.PathLike[str],
        prefix: str = "",
        postfix: str = "",
        confidence_scores: Mapping[Any, float] | None = None,
    ) -> list[Path]:
        """Write one JPEG per map into ``dir_path``; never a file outside it.

        Files are named ``f"{prefix}{name}{postfix}{conf}.jpg"``: ``name`` is the label name
        (classification with ``label_names``; path separators and other characters not
        allowed in file names become ``_``), else the index, and ``activation_map`` for the
        per-image map; ``conf`` is the target's score from ``confidence_scores``, as
        ``f"{score:.2f}"`` (``nan``, ``inf``, ``-inf``, and ``f"{score:.3g}"`` from 1e6 on).

        Every map gets its own file: when names collide (equal labels, labels that become
        equal once cleaned, or differ only in case), each colliding name gets ``_<target>``
        after ``name`` (again until no two names collide) and a
        :class:`salvo.files.FileNameWarning` says so. A name longer than 255 bytes is
        shortened to a readable head plus ``~`` and 12 hex digits of a hash of the full name
        (the same name always gives the same short name).

        Colour maps (RGB in memory) are written in BGR so viewers show the same colours; grey
        maps are written as they are (float maps min-max scaled to uint8). Each file is
        written to a hidden temporary file in ``dir_path`` (a fixed-length name) and renamed
        over the final name, so a crash or a full disk never leaves a truncated JPEG; files
        get the usual permissions (``0o666`` minus the umask).

        Parameters
        ----------
        dir_path
            Folder to write into; created with its parents if missing.
        prefix, postfix
            Strings put before and after the name. They must not contain a path separator
            (``/``, ``\\``), a NUL or be an absolute path: they cannot move the file out of
            ``dir_path`` (give sub-folders in ``dir_path`` instead).
        confidence_scores
            ``{target: score}`` appended to the names of those targets.

        Returns
        -------
        list of pathlib.Path
            The written files, in target order.

        Raises
        ------
        ValueError
            ``prefix`` or ``postfix`` holds a path separator, a NUL or is an absolute path
            (named in the message); nothing is written.
        TypeError
            ``prefix`` / ``postfix`` is not a string; ``confidence_scores`` is not a mapping
            of numbers.
        NotADirectoryError
            ``dir_path`` (or one of its parents) exists and is not a folder.
        PermissionError
            The folder cannot be created or written.
        OSError
            A write failed (e.g. the disk is full): the message names the file; no partial
            file is left (files written before it stay).
        """
        from salvo.files import (
            UNSAFE_CHARACTERS,
            atomic_write,
            check_name_part,
            format_score,
            unique_names,
            warn_renamed,
        )

        check_name_part(prefix, "prefix")
        check_name_part(postfix, "postfix")
        scores: dict[int | str, str] = {}
        if confidence_scores is not None:
            if not isinstance(confidence_scores, Mapping):
                raise TypeError(
                    "confidence_scores must be a dict {target: score}, got "
                    f"{type(confidence_scores).__name__}"
                )
            for key, value in confidence_scores.items():
                if isinstance(value, (bool, np.bool_)) or not isinstance(
                    value, (int, float, np.integer, np.floating)
                ):
                    raise TypeError(
                        f"confidence_scores[{key!r}] must be a number, got {value!r}"
                    )
                scores[normalise_target_key(key, "confidence_scores keys")] = format_score(value)
        folder = Path(dir_path)
        if folder.exists() and not folder.is_dir():
            raise NotADirectoryError(
                f"cannot save saliency maps into {str(folder)!r}: it exists and is not a folder"
            )
        try:
            folder.mkdir(parents=True, exist_ok=True)
        except (FileExistsError, NotADirectoryError) as err:
            raise NotADirectoryError(
                f"cannot create folder {str(folder)!r}: part of the path is a file ({err})"
            ) from err
        except PermissionError as err:
            raise PermissionError(f"cannot create folder {str(folder)!r}: {err}") from err

        targets = list(self._saliency_map)
        names = [UNSAFE_CHARACTERS.sub("_", self._name(t)) or str(t) for t in targets]

        def compose(i: int, name: str) -> str:
            return f"{prefix}{name}{postfix}{scores.get(targets[i], '')}"

        # a collision extends the label part: prefix{name}_{target}{postfix}{conf}.jpg
        file_names, renamed = unique_names(names, targets, compose, ".jpg")
        if renamed:
            warn_renamed([compose(i, names[i]) + ".jpg" for i in renamed],
                         [file_names[i] for i in renamed])

        import cv2

        written: list[Path] = []
        for (target, smap), file_name in zip(self._saliency_map.items(), file_names):
            ok, encoded = cv2.imencode(".jpg", _to_bgr_uint8(smap, target))
            if not ok:
                raise RuntimeError(f"OpenCV could not encode the saliency map of target {target!r}")
            written.append(atomic_write(folder / file_name, encoded.tobytes()))
        return written

    # ------------------------------------------------------------------------------ plot

    def plot(
        self,
        targets: Any = None,
        backend: str = "matplotlib",
        max_num_plots: int = 24,
        num_columns: int = 4,
    ) -> None:
        """Show the maps.

        Parameters
        ----------
        targets
            ``None`` (all), a target index, a label name (needs ``label_names``),
            ``"per_image_map"``, or a list of those.
        backend
            ``"matplotlib"``: a grid of subplots titled ``"Class {name} ({index})"``
            (``"Class {index}"`` without label names, ``"Activation map"`` for the per-image
            map), shown with ``plt.show()``; matplotlib is imported only here.
            ``"cv"``: one ``cv2.imshow`` window per map, each waiting for a key (needs a
            display).
        max_num_plots
            At most this many maps are shown (the first ones, with a warning).
        num_columns
            Columns of the matplotlib grid.

        Raises
        ------
        ValueError
            Unknown backend, targets not in the explanation, non-positive counts.
        ImportError
            ``backend="matplotlib"`` without matplotlib installed.
        RuntimeError
            ``backend="cv"`` where OpenCV cannot open a window: no display (neither
            ``DISPLAY`` nor ``WAYLAND_DISPLAY`` is set on Linux) or an OpenCV built without
            a GUI (``opencv-python-headless``). Checked before any window is opened, as
            OpenCV's Qt backend would otherwise abort the process.
        """
        if backend not in _PLOT_BACKENDS:
            raise ValueError(f"unknown plot backend {backend!r}; use one of {list(_PLOT_BACKENDS)}")
        for name, value in (("max_num_plots", max_num_plots), ("num_columns", num_columns)):
            if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < 1:
                raise ValueError(f"{name} must be a positive int, got {value!r}")
        selected = self._select(targets)
        if len(selected) > max_num_plots:
            warnings.warn(
                f"{len(selected)} saliency maps requested, plotting the first {max_num_plots} "
                "(raise max_num_plots, or pass targets=[...], to see others)",
                PlotWarning,
                stacklevel=2,
            )
            selected = selected[: int(max_num_plots)]
        if not selected:
            warnings.warn("no saliency maps to plot: the explanation holds none", PlotWarning,
                          stacklevel=2)
            return
        if backend == "cv":
            _check_cv_display()
        if backend == "matplotlib":
            self._plot_matplotlib(selected, int(num_columns))
        else:
            self._plot_cv(selected)

    def _plot_matplotlib(self, selected: list[int | str], num_columns: int) -> None:
        try:
            import matplotlib.pyplot as plt
        except ImportError as err:
            raise ImportError(
                "Explanation.plot(backend='matplotlib') needs matplotlib: pip install matplotlib "
                "(or use backend='cv')"
            ) from err
        num_cols = min(num_columns, len(selected))
        num_rows = math.ceil(len(selected) / num_cols)
        fig, axes = plt.subplots(
            num_rows, num_cols, figsize=(4 * num_cols, 4 * num_rows), squeeze=False
        )
        flat = axes.ravel()
        for ax, target in zip(flat, selected):
            smap = np.asarray(self._saliency_map[target])
            if smap.ndim == 3 and smap.shape[2] == 1:
                smap = smap[:, :, 0]
            if smap.ndim == 2:
                ax.imshow(smap, cmap="gray")
            else:
                ax.imshow(_to_uint8(smap))
            ax.set_title(self._title(target))
            ax.axis("off")
        for ax in flat[len(selected) :]:
            fig.delaxes(ax)
        fig.tight_layout()
        plt.show()

    def _plot_cv(self, selected: list[int | str]) -> None:
        import cv2

        for target in selected:
            title = self._title(target)
            cv2.imshow(title, _to_bgr_uint8(self._saliency_map[target], target))
            cv2.waitKey(0)
            cv2.destroyWindow(title)
