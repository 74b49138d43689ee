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
from enum import Enum
from pathlib import Path
from typing import Any

import numpy as np

from salvo.common import Method, Task
from salvo.errors import ArgumentTypeError, MapShapeError, PlotWarning
from salvo.methods.base import Prediction
from salvo.explainer.maps import PER_IMAGE_MAP_KEY, normalise_target_key, scale_to_uint8
from salvo.explainer.utils import convert_targets_to_numpy, explains_all, get_target_indices

logger = logging.getLogger(__name__)

__all__ = [
    "COLOR_MAPPED_LAYOUTS",
    "GRAY_LAYOUTS",
    "MULTIPLE_MAP_LAYOUTS",
    "ONE_MAP_LAYOUTS",
    "Explanation",
    "Layout",
    "Prediction",
    "Task",
    "convert_targets_to_numpy",
    "explains_all",
    "get_target_indices",
    "logger",
]

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


class Layout(Enum):
    """How an explanation's maps are laid out (the reference toolkit's ``Layout``).

    ``ONE_MAP_PER_IMAGE_*``: one class-agnostic map, keyed ``"per_image_map"`` (ActivationMap);
    ``MULTIPLE_MAPS_PER_IMAGE_*``: one map per target. ``*_GRAY``: ``(H, W)`` grey maps;
    ``*_COLOR``: ``(H, W, 3)`` colour-mapped RGB maps.
    """

    ONE_MAP_PER_IMAGE_GRAY = "one_map_per_image_gray"
    ONE_MAP_PER_IMAGE_COLOR = "one_map_per_image_color"
    MULTIPLE_MAPS_PER_IMAGE_GRAY = "multiple_maps_per_image_gray"
    MULTIPLE_MAPS_PER_IMAGE_COLOR = "multiple_maps_per_image_color"


#: Grey layouts.
GRAY_LAYOUTS = frozenset({Layout.ONE_MAP_PER_IMAGE_GRAY, Layout.MULTIPLE_MAPS_PER_IMAGE_GRAY})
#: Colour-mapped layouts.
COLOR_MAPPED_LAYOUTS = frozenset(
    {Layout.ONE_MAP_PER_IMAGE_COLOR, Layout.MULTIPLE_MAPS_PER_IMAGE_COLOR}
)
#: Layouts with one map per target.
MULTIPLE_MAP_LAYOUTS = frozenset(
    {Layout.MULTIPLE_MAPS_PER_IMAGE_GRAY, Layout.MULTIPLE_MAPS_PER_IMAGE_COLOR}
)
#: Layouts with one class-agnostic map per image.
ONE_MAP_LAYOUTS = frozenset({Layout.ONE_MAP_PER_IMAGE_GRAY, Layout.ONE_MAP_PER_IMAGE_COLOR})


def _layout_of(maps: Mapping[int | str, np.ndarray]) -> Layout:
    """The layout of ``maps``: one map or several, grey or colour ``(H, W, 3)``."""
    one = PER_IMAGE_MAP_KEY in maps
    colour = bool(maps) and all(m.ndim == 3 and m.shape[2] == 3 for m in maps.values())
    if one:
        return Layout.ONE_MAP_PER_IMAGE_COLOR if colour else Layout.ONE_MAP_PER_IMAGE_GRAY
    return Layout.MULTIPLE_MAPS_PER_IMAGE_COLOR if colour else Layout.MULTIPLE_MAPS_PER_IMAGE_GRAY


def _check_map_rank(key: int | str, value: np.ndarray) -> None:
    if value.ndim not in (2, 3):
        raise ValueError(
            f"saliency maps must be 2- or 3-dimensional ((H, W) grey or (H, W, 3) colour); "
            f"the map of target {key!r} has shape {value.shape}"
        )


def _has_name(targets: Any) -> bool:
    """Whether ``targets`` holds a string (a label name)."""
    if isinstance(targets, str):
        return True
    if isinstance(targets, np.ndarray):
        return targets.dtype.kind in "US"
    if isinstance(targets, (list, tuple)):
        return any(isinstance(t, str) for t in targets)
    return False


def _maps_of_array(raw: np.ndarray) -> dict[int | str, np.ndarray]:
    """``{target: map}`` of one image's raw maps ``(1, N, h, w)`` or ``(1, h, w)``."""
    if raw.size == 0:
        raise MapShapeError(f"saliency_map is an empty array (shape {raw.shape})")
    if raw.ndim not in (3, 4):
        raise MapShapeError(
            f"a saliency_map array must be (1, N, h, w) (one map per target) or (1, h, w) (one "
            f"map per image), got shape {raw.shape}"
            + ("; give one (h, w) map as a dict {target: map}" if raw.ndim == 2 else "")
        )
    if raw.shape[0] != 1:
        raise MapShapeError(
            f"a saliency_map array holds the maps of one image (batch size 1), got a batch of "
            f"{raw.shape[0]} (shape {raw.shape}); make one Explanation per image"
        )
    if raw.ndim == 3:
        return {PER_IMAGE_MAP_KEY: raw[0]}
    return {i: raw[0, i] for i in range(raw.shape[1])}


class Explanation:
    """Saliency maps of one input and what they explain (the reference toolkit's
    ``Explanation``).

    Parameters
    ----------
    saliency_map
        The maps: a dict ``{target: map}`` (keys are class indices (box indices for
        detection) as ints, or ``"per_image_map"`` for a class-agnostic map; maps ``(H, W)``
        grey or ``(H, W, 3)`` RGB), or a method's raw array for one image: ``(1, N, h, w)``
        (one map per class, keys ``0..N-1``) or ``(1, h, w)`` (one map per image).
    targets
        Which maps to keep, in this order: class indices, label names (with ``label_names``;
        classification only), a list of those, or ``-1`` / ``None`` for all. Ignored for a
        per-image map (as in the reference). A target without a map is an error.
    task
        :class:`salvo.common.Task` (or its value).
    label_names
        Class names indexed by class (a list of str, or an ``{index: name}`` dict);
        used for name targets, file names and plot titles (classification).
    predictions
        ``{target: Prediction(label, score, bounding_box)}``; tuples are converted.
    num_inferences
        Model inferences the explanation used.
    method
        :class:`salvo.common.Method` that produced the maps, if known.
    total_num_targets
        How many targets the method could explain (e.g. the model's classes); by default the
        number of maps of an array ``saliency_map``, else ``None``.
    reliability
        ``{target: float}``: for RISE and D-RISE, a conservative estimate of each map's
        correlation with the map infinitely many masks would give (NaN for a map without
        information); empty (default) for methods that do not estimate it.

    Attributes
    ----------
    saliency_map : dict
        ``{target: map}`` (settable; keys and shapes are checked, the layout updated).
    targets : list
        Keys as plain Python ints, or ``"per_image_map"``.
    shape : tuple or None
        Shape of one map (``None`` when there are no maps).
    layout : Layout
        One map or several, grey or colour (from the maps; settable).
    total_num_targets : int or None
        See the parameter.
    label_names, task, predictions, num_inferences, method
        As given.

    Raises
    ------
    ArgumentTypeError
        ``saliency_map`` is neither a dict nor an array (a ``TypeError`` and a ``ValueError``).
    MapShapeError
        An array that is empty or holds several images (a ``ValueError`` and a
        ``RuntimeError``).
    ValueError
        A map that is not 2- or 3-dimensional; a target without a map or out of range; a
        name target without ``label_names`` or not in them.
    TypeError
        A key that is neither an int nor ``"per_image_map"``.
    """

    def __init__(
        self,
        saliency_map: np.ndarray | Mapping[Any, np.ndarray],
        targets: np.ndarray | Sequence[int | str] | int | str | None = None,
        task: Task | str = Task.CLASSIFICATION,
        label_names: Sequence[str] | Mapping[int, str] | None = None,
        predictions: Mapping[Any, Prediction | tuple] | None = None,
        num_inferences: int = 0,
        method: Method | str | None = None,
        *,
        total_num_targets: int | None = None,
        reliability: Mapping[Any, float] | None = None,
    ) -> None:
        self._task = task if isinstance(task, Task) else Task(str(task).lower())
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
        self._reliability: dict[int | str, float] = {
            normalise_target_key(key, "reliability keys"): float(value)
            for key, value in (reliability or {}).items()
        }
        self._predictions: dict[int | str, Prediction] = {}
        for key, value in (predictions or {}).items():
            pred = value if isinstance(value, Prediction) else Prediction(*value)
            self._predictions[normalise_target_key(key, "predictions keys")] = pred
        from_array = isinstance(saliency_map, np.ndarray)
        if from_array:
            saliency_map = _maps_of_array(saliency_map)
        elif not isinstance(saliency_map, Mapping):
            raise ArgumentTypeError(
                "saliency_map must be a dict {target: map} or a (1, N, h, w) / (1, h, w) array, "
                f"got {type(saliency_map).__name__}"
            )
        if total_num_targets is None and from_array:
            total_num_targets = len(saliency_map)
        if total_num_targets is not None:
            from salvo._checks import check_int

            total_num_targets = check_int(total_num_targets, "total_num_targets", minimum=0)
        #: How many targets the method could explain (``None`` when unknown).
        self.total_num_targets: int | None = total_num_targets
        self._saliency_map: dict[int | str, np.ndarray] = {}
        self._layout = Layout.MULTIPLE_MAPS_PER_IMAGE_GRAY
        self._set_maps(saliency_map)
        self._keep(targets, limit=self.total_num_targets if from_array else None)

    # ------------------------------------------------------------------------------ data

    def _set_maps(self, saliency_map: Mapping[Any, np.ndarray]) -> None:
        if not isinstance(saliency_map, Mapping):
            raise ArgumentTypeError(
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
        for key, value in maps.items():
            _check_map_rank(key, value)
        self._saliency_map = maps
        self._layout = _layout_of(maps)

    def _keep(self, targets: Any, limit: int | None) -> None:
        """Keep the maps of ``targets``, in their order (see the class docstring)."""
        if self._layout in ONE_MAP_LAYOUTS or targets is None or explains_all(targets):
            return
        if isinstance(targets, (list, tuple, np.ndarray)) and len(targets) == 0:
            if self._saliency_map:
                raise ValueError("targets is empty: give the targets to keep, or -1 for all")
            return
        names = self._label_names if self._task is Task.CLASSIFICATION else None
        if names is None and self._task is Task.DETECTION and _has_name(targets):
            raise ValueError(
                "targets of a detection explanation are box indices, not label names, got "
                f"{targets!r:.80}"
            )
        keys = get_target_indices(targets, names)
        if limit is not None:
            bad = [k for k in keys if not 0 <= k < limit]
            if bad:
                raise ValueError(
                    f"targets {bad[:10]} are out of range: the saliency_map array holds maps "
                    f"0..{limit - 1}"
                )
        missing = [k for k in keys if k not in self._saliency_map]
        if missing:
            raise ValueError(
                f"targets {missing[:10]} have no map in saliency_map (it has "
                f"{list(self._saliency_map)[:10]}{' ...' if len(self._saliency_map) > 10 else ''})"
            )
        self._saliency_map = {k: self._saliency_map[k] for k in keys}

    @property
    def saliency_map(self) -> dict[int | str, np.ndarray]:
        """``{target: map}``; see the class docstring."""
        return self._saliency_map

    @saliency_map.setter
    def saliency_map(self, value: Mapping[Any, np.ndarray]) -> None:
        self._set_maps(value)

    @property
    def layout(self) -> Layout:
        """:class:`Layout` of the maps (set from them; settable, as the reference's
        Visualizer does)."""
        return self._layout

    @layout.setter
    def layout(self, value: Layout) -> None:
        if not isinstance(value, Layout):
            raise TypeError(f"layout must be a Layout, got {value!r}")
        self._layout = value

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
    def reliability(self) -> dict[int | str, float]:
        """``{target: float}``: each map's reliability (RISE and D-RISE: a conservative estimate
        of its correlation with the map of infinitely many masks; NaN for a map without
        information); empty when the method does not estimate it."""
        return {k: v for k, v in self._reliability.items() if k in self._saliency_map}

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

    def _select(self, targets: Any, *, stacklevel: int = 2) -> list[int | str]:
        """The keys to plot: all for ``None`` / ``-1``; else the keys ``targets`` names that
        have a map, in order, with a :class:`~salvo.errors.PlotWarning` naming the others."""
        if targets is None or explains_all(targets):
            return self.targets
        if isinstance(targets, (str, int, np.integer)):
            items: list[Any] = [targets]
        elif isinstance(targets, np.ndarray):
            items = convert_targets_to_numpy(targets).tolist()
        elif isinstance(targets, Iterable) and not isinstance(targets, (bytes, Mapping)):
            items = list(targets)
        else:
            raise ValueError(
                f"targets must be a target index, a label name or a list of them, got "
                f"{targets!r:.80}"
            )
        if not items:
            raise ValueError("targets is empty: give the targets to plot, or None for all")
        wanted: list[int | str] = []
        for t in items:
            if isinstance(t, str) and t == PER_IMAGE_MAP_KEY:
                wanted.append(PER_IMAGE_MAP_KEY)
            else:
                wanted.extend(get_target_indices([t], self._label_names))
        selected = [k for k in dict.fromkeys(wanted) if k in self._saliency_map]
        missing = [k for k in dict.fromkeys(wanted) if k not in self._saliency_map]
        if missing:
            have = f"{self.targets[:10]}{' ...' if len(self) > 10 else ''}"
            warnings.warn(
                f"targets {missing[:10]} are not in this explanation (it has {have}); "
                + ("plotting the others" if selected else "nothing to plot"),
                PlotWarning,
                stacklevel=stacklevel + 1,
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
            ``None`` or ``-1`` (all), a target index, a label name (needs ``label_names``),
            ``"per_image_map"``, or a list of those. A target without a map in this
            explanation is skipped with a :class:`~salvo.errors.PlotWarning` naming it (the
            others are plotted; nothing is when none has a map).
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
            Unknown backend; a label name without ``label_names`` or not in them; a map
            that is not 2- or 3-dimensional (maps put into :attr:`saliency_map` in place are
            not checked before); non-positive counts.
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
        selected = self._select(targets, stacklevel=3)
        if len(selected) > max_num_plots:
            warnings.warn(
                f"{len(selected)} saliency maps requested, plotting the first {max_num_plots} "
                "(raise max_num_plots, or pass targets=[...], to see others)",
                PlotWarning,
                stacklevel=2,
            )
            selected = selected[: int(max_num_plots)]
        if not selected:
            if not self._saliency_map:
                warnings.warn("no saliency maps to plot: the explanation holds none",
                              PlotWarning, stacklevel=2)
            return
        for key in selected:
            _check_map_rank(key, np.asarray(self._saliency_map[key]))
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
