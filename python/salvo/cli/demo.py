"""``salvo demo``: explain the coffee photo with EfficientNet-Lite0 and write what it shows.

The photo goes through the zoo's own EfficientNet-Lite0 preprocessing
(:func:`salvo.zoo.efficientnet_lite0_preprocess`; the same numbers as ``--preprocess lite0``)
so that the maps can be drawn on the exact 224 x 224 crop the model sees.
"""

from __future__ import annotations

import argparse
import logging
import os
import time
from collections.abc import Iterable
from pathlib import Path

import cv2
import numpy as np

import salvo
from salvo.files import atomic_write
from salvo.inference import InferenceEngine
from salvo.zoo import (
    efficientnet_lite0,
    efficientnet_lite0_preprocess,
    imagenet_labels,
    resize_crop_uint8,
    sample_image,
)

__all__ = ["DemoFiles", "run_demo", "run_demo_command"]

logger = logging.getLogger(__name__)


class DemoFiles(list):
    """The files ``run_demo`` wrote (a list of paths), and in ``removed`` the ones it removed:
    RISE maps of an earlier run when this one has ``rise=False``."""

    def __init__(self, paths: Iterable[Path] = ()) -> None:
        super().__init__(paths)
        self.removed: list[Path] = []


def _write_image(path: Path, rgb: np.ndarray) -> Path:
    """Write an RGB image atomically, readable by all like any file the user creates."""
    ok, buf = cv2.imencode(path.suffix, cv2.cvtColor(rgb, cv2.COLOR_RGB2BGR))
    if not ok:
        raise RuntimeError(f"could not encode {path}")
    return atomic_write(path, buf.tobytes())


def _tile(image: np.ndarray, caption: str, size: int = 224) -> np.ndarray:
    """``image`` resized to ``size`` x ``size`` under a white band with ``caption``."""
    tile = cv2.resize(image, (size, size), interpolation=cv2.INTER_AREA)
    band = np.full((28, size, 3), 255, np.uint8)
    cv2.putText(band, caption[:30], (4, 19), cv2.FONT_HERSHEY_SIMPLEX, 0.5, (0, 0, 0), 1,
                cv2.LINE_AA)
    return np.concatenate([band, tile], axis=0)


def run_demo(out_dir: Path | str, *, device_name: str = "CPU", rise: bool = True,
             num_masks: int = 1000) -> DemoFiles:
    """Explain ``skimage``'s coffee photo with the zoo's EfficientNet-Lite0.

    Writes into ``out_dir``: ``original.jpg`` (the 224x224 crop the model sees), the ReciproCAM
    overlays of the top-3 classes (``reciprocam_{label}.jpg``), the RISE ones (``rise_{label}.jpg``)
    and ``grid.png`` (rows: methods, columns: the photo and the three classes). All files are
    written atomically with the usual permissions (``-rw-r--r--`` under umask 022). With
    ``rise=False``, the RISE maps an earlier run wrote into ``out_dir`` (the same file names)
    are removed, so the folder shows one run.

    Returns
    -------
    DemoFiles
        The files written (a list of paths); ``.removed``: the earlier RISE maps removed.
    """
    out = Path(out_dir)
    if out.exists() and not out.is_dir():
        raise NotADirectoryError(f"--out {str(out)!r} exists and is not a folder")
    out.mkdir(parents=True, exist_ok=True)
    if not os.access(out, os.W_OK):
        raise PermissionError(f"--out {str(out)!r} is not writable")

    photo = sample_image("coffee")
    crop = resize_crop_uint8(photo)[0]  # what the model sees, to overlay on
    x = efficientnet_lite0_preprocess(photo)
    model = efficientnet_lite0()
    labels = [name.split(",")[0].strip() for name in imagenet_labels()]

    (logits,) = InferenceEngine(model, device_name, batch_size=1, num_requests=1,
                                performance_hint="LATENCY").infer_items(x)
    top3 = [int(i) for i in np.argsort(logits[0])[::-1][:3]]
    written = DemoFiles([_write_image(out / "original.jpg", crop)])
    rows: list[list[np.ndarray]] = []

    def explain(explainer: salvo.Explainer, prefix: str, **kwargs) -> list[np.ndarray]:
        t0 = time.perf_counter()
        explanation = explainer(x, targets=top3, label_names=labels, overlay=True,
                                original_input_image=crop, **kwargs)
        logger.info("%s: %.2f s, %d inferences", prefix, time.perf_counter() - t0,
                    explanation.num_inferences)
        written.extend(explanation.save(out, prefix=f"{prefix}_"))
        return [explanation.saliency_map[t] for t in top3]

    white = salvo.Explainer(model, salvo.Task.CLASSIFICATION,
                            explain_mode=salvo.ExplainMode.WHITEBOX,
                            explain_method=salvo.Method.RECIPROCAM, device_name=device_name)
    maps = explain(white, "reciprocam")
    rows.append([_tile(m, f"ReciproCAM: {labels[t]}") for m, t in zip(maps, top3)])
    if not rise:  # RISE maps of an earlier run would look like this run's
        for path in list(written[1:]):
            stale = out / ("rise_" + path.name[len("reciprocam_"):])
            if stale.is_file():
                stale.unlink()
                written.removed.append(stale)
    else:
        black = salvo.Explainer(model, salvo.Task.CLASSIFICATION,
                                postprocess_fn=lambda o: o[0],
                                explain_mode=salvo.ExplainMode.BLACKBOX,
                                explain_method=salvo.Method.RISE, device_name=device_name)
        maps = explain(black, "rise", num_masks=num_masks)
        rows.append([_tile(m, f"RISE ({num_masks}): {labels[t]}") for m, t in zip(maps, top3)])

    first = _tile(crop, "input")
    grid = np.concatenate([np.concatenate([first, *row], axis=1) for row in rows], axis=0)
    written.append(_write_image(out / "grid.png", grid))
    return written


def run_demo_command(args: argparse.Namespace) -> int:
    """``salvo demo``: run :func:`run_demo` and list the files it wrote (and removed)."""
    written = run_demo(Path(args.out), device_name=args.device, rise=not args.no_rise)
    print(f"wrote {len(written)} files to {args.out}:")
    for path in written:
        print(f"  {path}")
    if written.removed:
        print(f"removed {len(written.removed)} RISE maps of an earlier run (--no-rise):")
        for path in written.removed:
            print(f"  {path}")
    return 0
