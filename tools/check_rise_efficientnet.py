"""salvo's RISE against the reference's converged RISE map on a real model (too long for the
test suite: 20000 inferences of EfficientNet-Lite0, 1-8 minutes on 2 cores).

The reference's RISE needs about 20000 masks on the coffee photo (class 967) to settle: its
5000-mask runs with two seeds correlate only 0.63. ``tests/data/reference/blackbox_rise_20k.npz``
holds its 20000-mask map (``tools/make_reference_goldens.py``, group ``blackbox_rise_20k``);
salvo's RISE with as many masks (default centred estimator, f32) must correlate with it at
least 0.9 (measured: 0.919). The suite checks the same on the planted CNN, where both converge
within seconds (``tests/conformance/test_reference_conformance.py``).

Usage: ``python tools/check_rise_efficientnet.py [--num-masks N]``; exit status 1 below 0.9.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

GOLDEN = (Path(__file__).resolve().parents[1] / "tests" / "data" / "reference"
          / "blackbox_rise_20k.npz")


def main(argv: list[str] | None = None) -> int:
    from salvo import zoo
    from salvo.methods import RISE

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--num-masks", type=int, default=20000)
    parser.add_argument("--seed", type=int, default=5)
    args = parser.parse_args(argv)
    with np.load(GOLDEN) as npz:
        want = npz["rise20k.coffee.967.raw"]
    x = zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"))
    rise = RISE(zoo.efficientnet_lite0(), lambda outputs: np.asarray(outputs["logits"]),
                precision="f32")
    t0 = time.perf_counter()
    got = rise.generate_saliency_map(x, target_indices=[967], num_masks=args.num_masks,
                                     num_cells=8, seed=args.seed, scale_output=False)[967]
    seconds = time.perf_counter() - t0
    r = float(np.corrcoef(np.ravel(got).astype(np.float64),
                          np.ravel(want).astype(np.float64))[0, 1])
    print(f"RISE coffee/967, {args.num_masks} masks: correlation with the reference's 20000-mask "
          f"map {r:.3f} ({seconds:.1f} s)")
    return 0 if r >= 0.9 else 1


if __name__ == "__main__":
    sys.exit(main())
