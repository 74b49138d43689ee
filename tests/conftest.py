"""Fixtures shared by the test files, and the skip policy (``support.py``).

Models are module-scoped, as the files had them: every module gets its own ``ov.Model``, so a
test that edits one (reshape, insertion) cannot reach another module. Skips happen only here
or through ``support.require``, for a missing optional package, naming the install command;
the hooks imported below fail any other skip.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from support import (  # noqa: F401 - the hooks enforce the skip policy
    pytest_make_collect_report,
    pytest_runtest_makereport,
    require_zoo,
)

from salvo import zoo
from salvo.testing.planted import PlantedModel, batchable, planted_cnn

pytest_plugins = ["pytester"]  # tests/unit/test_test_support.py runs pytest on made-up tests

# ------------------------------------------------------------------------- planted models


@pytest.fixture(scope="module")
def planted() -> PlantedModel:
    """The 56 x 56 planted CNN (three classes, each the mean of its own region; static batch)."""
    return planted_cnn(size=56)


@pytest.fixture(scope="module")
def model(planted: PlantedModel) -> ov.Model:
    """``planted`` with a dynamic batch, as the black-box engine wants it."""
    return batchable(planted)


# ----------------------------------------------------------------------- the zoo and photos


@pytest.fixture(scope="session")
def zoo_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A cache folder for the zoo's built models, for this session only (not ~/.cache)."""
    return tmp_path_factory.mktemp("salvo_cache")


@pytest.fixture(scope="module")
def lite0(zoo_cache: Path) -> ov.Model:
    """EfficientNet-Lite0 with ImageNet weights (``float32 [1, 3, 224, 224]`` -> logits)."""
    require_zoo("efficientnet_lite0")
    return zoo.efficientnet_lite0(zoo_cache)


@pytest.fixture(scope="module")
def lite0_coffee() -> np.ndarray:
    """The coffee photo as EfficientNet-Lite0's input ``(1, 3, 224, 224)`` float32 (top-1:
    espresso, ``support.ESPRESSO``)."""
    return zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee"))


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    """skimage's astronaut photo, ``(512, 512, 3)`` uint8 RGB (one person, one face)."""
    return zoo.sample_image("astronaut")


@pytest.fixture(scope="module")
def ssdlite() -> ov.Model:
    """The SSDLite person detector of the zoo."""
    require_zoo("ssdlite_person")
    return zoo.ssdlite_person()


@pytest.fixture(scope="module")
def blazeface() -> ov.Model:
    """MediaPipe's BlazeFace short-range face detector of the zoo."""
    require_zoo("blazeface")
    return zoo.blazeface()
