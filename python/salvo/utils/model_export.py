"""Exporting models (the reference toolkit's ``openvino_xai.utils.model_export``): a PyTorch
model to ONNX, and an ONNX (or any OpenVINO-readable) model to OpenVINO IR."""

from __future__ import annotations

import os
from typing import Any

import openvino as ov

__all__ = ["export_to_ir", "export_to_onnx"]


def export_to_onnx(model: Any, save_path: str | os.PathLike[str], data_sample: Any,
                   set_dynamic_batch: bool) -> None:
    """Export a PyTorch model to ONNX with the reference's settings: opset 14, no constant
    folding, input ``"data"``, output ``"logits"``, and with ``set_dynamic_batch`` a dynamic
    batch axis.

    Parameters
    ----------
    model
        A ``torch.nn.Module``.
    save_path
        The ``.onnx`` file to write.
    data_sample
        An example input tensor (traced through the model).
    set_dynamic_batch
        Make the batch axis of ``"data"`` dynamic.

    Raises
    ------
    ImportError
        PyTorch is not installed.
    TypeError
        ``model`` is not a ``torch.nn.Module``.
    """
    try:
        import torch
    except ImportError as err:
        raise ImportError("export_to_onnx needs PyTorch: pip install torch") from err
    if not isinstance(model, torch.nn.Module):
        raise TypeError(f"model must be a torch.nn.Module, got {type(model).__name__}")
    from salvo._checks import check_flag

    dynamic_axes = {"data": {0: "batch"}} if check_flag(set_dynamic_batch,
                                                        "set_dynamic_batch") else {}
    torch.onnx.export(
        model,
        data_sample,
        os.fspath(save_path),
        export_params=True,
        opset_version=14,
        do_constant_folding=False,
        input_names=["data"],
        output_names=["logits"],
        dynamic_axes=dynamic_axes,
    )


def export_to_ir(model_path: str | os.PathLike[str], save_path: str | os.PathLike[str]) -> None:
    """Convert a model file (ONNX, or anything ``openvino.convert_model`` reads) to OpenVINO IR
    at ``save_path`` (``.xml``, with its ``.bin`` beside it), as ``openvino.save_model`` writes
    it (weights compressed to FP16 by default). The two files are written under temporary names
    in the same folder and then renamed, so an interrupted export leaves no partial model.

    Raises
    ------
    FileNotFoundError
        ``model_path`` does not exist.
    ValueError
        ``save_path`` does not end in ``.xml``.
    """
    import shutil
    import tempfile
    from pathlib import Path

    path = os.fspath(model_path)
    if not os.path.exists(path):
        raise FileNotFoundError(f"model_path {path!r} does not exist")
    target = Path(save_path)
    if target.suffix.lower() != ".xml":
        raise ValueError(f"save_path must be an .xml file, got {str(target)!r}")
    model = ov.convert_model(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=".export-", dir=target.parent))
    try:
        ov.save_model(model, str(work / "model.xml"))
        os.replace(work / "model.bin", target.with_suffix(".bin"))
        os.replace(work / "model.xml", target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
