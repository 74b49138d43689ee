# Source: openvino_xai examples/run_detection.py (1.1.0).
# Changes: openvino_xai -> salvo; `openvino.runtime` -> `openvino` (gone in OpenVINO 2026);
# the OTX ATSS model -> the zoo's SSDLite person detector (model_path defaults to it, written
# as IR reshaped to 1x300x300x3); the image defaults to the zoo's astronaut photo;
# preprocess_fn/postprocess_fn -> the zoo's SSDLite ones; targets [0, 1, 2] -> [0, 1]; the ATSS class-head names -> SSDLite's six class-predictor heads (resolved
# at run time: the NCHW node feeding each 'BoxPredictor_<i>/ClassPredictor/BiasAdd' Transpose)
# and num_anchors=[3, 6, 6, 6, 6, 6] added (ATSS has one anchor per cell, SSDLite does not).
import argparse
import sys
from pathlib import Path

import cv2
import numpy as np
import openvino as ov

import salvo as xai
from salvo.common.utils import logger
from salvo.explainer.explainer import ExplainMode
from salvo.methods.black_box.base import Preset

from _offline import detector_xml, image_path as _image_path, zoo


def get_argument_parser():
    parser = argparse.ArgumentParser()
    parser.add_argument("model_path", nargs="?", default=None)
    parser.add_argument("image_path", nargs="?", default=None)
    parser.add_argument("--output", default="output", type=str)
    return parser


def preprocess_fn(x: np.ndarray) -> np.ndarray:
    # example: cv2.resize(src=x, dsize=(992, 736)); transpose; expand_dims  (OTX ATSS)
    return zoo.ssdlite_preprocess(cv2.cvtColor(x, cv2.COLOR_BGR2RGB))


def postprocess_fn(x) -> np.ndarray:
    """Returns boxes, scores, labels."""
    # example: x["boxes"][:, :, :4], x["boxes"][:, :, 4], x["labels"]  (OTX ATSS)
    return zoo.ssdlite_postprocess(x)


def _ssd_class_heads(model):
    return [op.input(0).get_source_output().get_node().get_friendly_name()
            for op in model.get_ordered_ops()
            if op.get_type_name() == "Transpose"
            and op.get_friendly_name().endswith("ClassPredictor/BiasAdd")]


def explain_white_box(args):
    """
    White-box scenario.
    Per-class saliency map generation for single-stage detection models (using DetClassProbabilityMap).
    Insertion of the XAI branch into the model, thus model has additional 'saliency_map' output.
    """

    # Create ov.Model
    model: ov.Model
    model = ov.Core().read_model(args.model_path)

    # example: OTX ATSS "/bbox_head/atss_cls_{1..4}/Conv/WithoutBiases"
    cls_head_output_node_names = _ssd_class_heads(model)

    # Create explainer object
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.DETECTION,
        preprocess_fn=preprocess_fn,
        explain_mode=ExplainMode.WHITEBOX,  # defaults to AUTO
        target_layer=cls_head_output_node_names,
        num_anchors=[3, 6, 6, 6, 6, 6],  # added for SSDLite
        saliency_map_size=(23, 23),  # Optional
    )

    # Prepare input image and explanation parameters, can be different for each explain call
    image = cv2.imread(args.image_path)

    # Generate explanation
    explanation = explainer(
        image,
        targets=[0, 1],  # example: [0, 1, 2]; SSDLite has 2 classes (background, person)
        overlay=True,
    )

    logger.info(
        f"Generated {len(explanation.saliency_map)} detection "
        f"saliency maps of layout {explanation.layout} with shape {explanation.shape}."
    )

    # Save saliency maps for visual inspection
    if args.output is not None:
        output = Path(args.output) / "detection"
        explanation.save(output, Path(args.image_path).stem)


def explain_black_box(args):
    """
    Black-box scenario.
    Per-box saliency map generation for all detection models (using AISEDetection).
    """

    # Create ov.Model
    model: ov.Model
    model = ov.Core().read_model(args.model_path)

    # Create explainer object
    explainer = xai.Explainer(
        model=model,
        task=xai.Task.DETECTION,
        preprocess_fn=preprocess_fn,
        postprocess_fn=postprocess_fn,
        explain_mode=ExplainMode.BLACKBOX,  # defaults to AUTO
    )

    # Prepare input image and explanation parameters, can be different for each explain call
    image = cv2.imread(args.image_path)

    # Generate explanation
    explanation = explainer(
        image,
        targets=[0],  # target boxes to explain
        overlay=True,
        preset=Preset.SPEED,
    )

    logger.info(
        f"Generated {len(explanation.saliency_map)} detection "
        f"saliency maps of layout {explanation.layout} with shape {explanation.shape}."
    )

    # Save saliency maps for visual inspection
    if args.output is not None:
        output = Path(args.output) / "detection_black_box"
        explanation.save(output, f"{Path(args.image_path).stem}_")


def main(argv):
    parser = get_argument_parser()
    args = parser.parse_args(argv)
    if args.model_path is None:
        args.model_path = detector_xml()
    args.image_path = args.image_path or _image_path("astronaut")

    explain_white_box(args)
    explain_black_box(args)


if __name__ == "__main__":
    main(sys.argv[1:])
