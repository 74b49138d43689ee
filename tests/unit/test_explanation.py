"""Explanation: attributes, save (names, colours, atomic writes, errors) and plot."""

from __future__ import annotations

import os
import shutil
import sys
import tempfile
from pathlib import Path

import cv2
import matplotlib
import numpy as np
import pytest

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402

from salvo.common import Method, Task  # noqa: E402
from salvo.errors import PlotWarning  # noqa: E402
from salvo.explainer import explanation as explanation_module  # noqa: E402
from salvo.explainer.explanation import Explanation, Prediction  # noqa: E402
from support import unprivileged  # noqa: E402


def rgb_map(seed: int) -> np.ndarray:
    """(24, 32, 3) uint8 RGB: red top-left block, blue bottom-right block, grey elsewhere."""
    m = np.full((24, 32, 3), 128, np.uint8)
    m[:8, :10] = (230, 10, 10)  # red in RGB
    m[16:, 20:] = (10, 10, 230)  # blue in RGB
    m[12, seed % 32] = (0, 255, 0)
    return m


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


@pytest.fixture
def explanation() -> Explanation:
    maps = {np.int64(3): rgb_map(0), 7: rgb_map(1), 12: rgb_map(2)}
    return Explanation(maps, targets=[7, 3, 12], task=Task.CLASSIFICATION)


# ------------------------------------------------------------------------------- attributes


def test_attributes(explanation):
    assert explanation.targets == [7, 3, 12]
    assert all(type(t) is int for t in explanation.targets)
    assert list(explanation.saliency_map) == [7, 3, 12]
    assert explanation.shape == (24, 32, 3)
    assert explanation.task is Task.CLASSIFICATION
    assert explanation.label_names is None
    assert explanation.predictions == {}
    assert explanation.num_inferences == 0
    assert len(explanation) == 3
    text = repr(explanation)
    assert "classification" in text and "[7, 3, 12]" in text and "(24, 32, 3)" in text


def test_constructor_conversions_and_errors():
    e = Explanation(
        {"per_image_map": np.zeros((4, 4))},
        task="detection",
        predictions={np.int64(0): (1, 0.9, (1.0, 2.0, 3.0, 4.0))},
        num_inferences=np.int64(5),
        method="activationmap",
    )
    assert e.targets == ["per_image_map"]
    assert e.task is Task.DETECTION and e.method is Method.ACTIVATIONMAP
    assert e.predictions == {0: Prediction(label=1, score=0.9, bounding_box=(1.0, 2.0, 3.0, 4.0))}
    assert type(e.num_inferences) is int and e.num_inferences == 5
    with pytest.raises(ValueError, match="targets"):
        Explanation({1: np.zeros((2, 2))}, targets=[2])
    with pytest.raises(TypeError, match="per_image_map"):
        Explanation({"cat": np.zeros((2, 2))})
    with pytest.raises(ValueError, match="num_inferences"):
        Explanation({1: np.zeros((2, 2))}, num_inferences=-1)
    with pytest.raises(TypeError, match="dict"):
        Explanation([np.zeros((2, 2))])


# ------------------------------------------------------------------------------- save


def test_save_names_with_prefix_postfix_and_confidence(explanation, tmp_path):
    out = tmp_path / "a" / "b"  # parents are created
    written = explanation.save(out, prefix="pre_", postfix="_post", confidence_scores={3: 0.456})
    names = [p.name for p in written]
    assert names == ["pre_7_post.jpg", "pre_3_post0.46.jpg", "pre_12_post.jpg"]
    assert sorted(os.listdir(out)) == sorted(names)


def test_save_default_names(explanation, tmp_path):
    names = [p.name for p in explanation.save(tmp_path)]
    assert names == ["7.jpg", "3.jpg", "12.jpg"]


def test_save_uses_label_names_sanitised(tmp_path):
    labels = [f"class{i}" for i in range(10)]
    labels[3] = "cat/dog"
    labels[4] = "..\\evil"
    e = Explanation({3: rgb_map(0), 4: rgb_map(1), 5: rgb_map(2)}, label_names=labels)
    names = [p.name for p in e.save(tmp_path, prefix="label_names_")]
    assert names == ["label_names_cat_dog.jpg", "label_names_.._evil.jpg", "label_names_class5.jpg"]
    assert sorted(os.listdir(tmp_path)) == sorted(names)  # nothing escaped into other folders
    assert not (tmp_path.parent / "evil.jpg").exists()


def test_save_detection_uses_indices_even_with_label_names(tmp_path):
    e = Explanation({0: rgb_map(0), 1: rgb_map(1)}, task=Task.DETECTION, label_names=["face"])
    assert [p.name for p in e.save(tmp_path)] == ["0.jpg", "1.jpg"]


def test_save_activation_map_name(tmp_path):
    e = Explanation({"per_image_map": rgb_map(0)}, label_names=["a", "b"])
    assert [p.name for p in e.save(tmp_path, "x_")] == ["x_activation_map.jpg"]


def test_saved_colours_read_back_as_bgr_of_the_rgb_map(explanation, tmp_path):
    written = explanation.save(tmp_path)
    for path, target in zip(written, explanation.targets):
        back = cv2.imread(str(path))  # BGR
        expected_bgr = explanation.saliency_map[target][:, :, ::-1].astype(int)
        assert back.shape == expected_bgr.shape
        assert np.abs(back.astype(int) - expected_bgr).mean() < 4.0  # JPEG tolerance
        # the red block (RGB) must come back red in BGR: channel 2 high, channel 0 low
        red = back[2:6, 2:8].reshape(-1, 3).mean(axis=0)
        assert red[2] > 180 and red[0] < 60
        # negative control: the saved file is not the unconverted RGB array
        assert np.abs(back.astype(int) - explanation.saliency_map[target].astype(int)).mean() > 20


def test_saved_grey_maps(tmp_path):
    gray_u8 = np.tile(np.arange(0, 240, 10, dtype=np.uint8), (16, 1))  # (16, 24) ramp
    gray_f = gray_u8.astype(np.float32) / 1000.0 - 0.05  # float map: min-max scaled on save
    e = Explanation({0: gray_u8, 1: gray_f})
    p0, p1 = e.save(tmp_path)
    back0 = cv2.imread(str(p0), cv2.IMREAD_UNCHANGED)
    back1 = cv2.imread(str(p1), cv2.IMREAD_UNCHANGED)
    assert back0.ndim == 2 and back1.ndim == 2
    assert np.abs(back0.astype(int) - gray_u8).max() <= 6
    scaled = np.rint(255 * (gray_f - gray_f.min()) / (gray_f.max() - gray_f.min()))
    assert np.abs(back1.astype(int) - scaled).max() <= 6


def test_save_into_a_file_path_names_it(explanation, tmp_path):
    blocker = tmp_path / "not_a_folder"
    blocker.write_bytes(b"x")
    with pytest.raises(NotADirectoryError, match="not_a_folder"):
        explanation.save(blocker)
    with pytest.raises(NotADirectoryError, match="not_a_folder"):
        explanation.save(blocker / "sub")
    assert blocker.read_bytes() == b"x"


def test_save_into_unwritable_folder_names_it(explanation, tmp_path):
    # a folder everyone may enter and list but nobody may write to; as root (who ignores
    # modes) the save runs as nobody, so the folder's path must be open to others
    explanation.save(tmp_path / "warm_up")  # imports and encoders loaded before
    base = Path(tempfile.mkdtemp(prefix="salvo_modes_"))
    try:
        base.chmod(0o755)
        locked = base / "locked"
        locked.mkdir()
        locked.chmod(0o555)
        with unprivileged(), pytest.raises(PermissionError, match="locked"):
            explanation.save(locked)
        assert os.listdir(locked) == []
    finally:
        shutil.rmtree(base)


def test_write_permission_error_names_the_file(explanation, tmp_path, monkeypatch):
    def denied(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(explanation_module.os, "open", denied)
    with pytest.raises(PermissionError, match="7.jpg"):
        explanation.save(tmp_path / "out")


def test_atomic_save_leaves_no_temporary_files(explanation, tmp_path):
    (tmp_path / "7.jpg").write_bytes(b"old")  # replaced, not appended to
    written = explanation.save(tmp_path)
    assert sorted(os.listdir(tmp_path)) == sorted(p.name for p in written)
    assert cv2.imread(str(tmp_path / "7.jpg")) is not None


def test_failed_write_leaves_neither_temp_nor_partial_file(explanation, tmp_path, monkeypatch):
    def broken_replace(src, dst):
        raise OSError("disk full")

    monkeypatch.setattr(explanation_module.os, "replace", broken_replace)
    with pytest.raises(OSError, match="disk full"):
        explanation.save(tmp_path)
    assert os.listdir(tmp_path) == []


def test_same_label_names_do_not_overwrite(tmp_path):
    from salvo.files import FileNameWarning

    e = Explanation({0: rgb_map(0), 1: rgb_map(1)}, label_names=["a/b", "a_b"])
    with pytest.warns(FileNameWarning, match="a_b.jpg"):
        written = e.save(tmp_path)
    assert len({p.name for p in written}) == 2
    assert len(os.listdir(tmp_path)) == 2


# ------------------------------------------------------------------------------- plot


def test_plot_matplotlib_grid_and_titles():
    labels = [f"label{i}" for i in range(10)]
    maps = {i: rgb_map(i) for i in (1, 2, 5, 6, 8)}
    maps["per_image_map"] = np.random.default_rng(0).random((24, 32))
    e = Explanation(maps, label_names=labels)
    e.plot(num_columns=4)
    fig = plt.gcf()
    titles = [ax.get_title() for ax in fig.axes]
    assert titles == [
        "Class label1 (1)",
        "Class label2 (2)",
        "Class label5 (5)",
        "Class label6 (6)",
        "Class label8 (8)",
        "Activation map",
    ]
    # 6 maps in 4 columns: a 2 x 4 grid with the 2 unused axes removed
    assert fig.axes[0].get_subplotspec().get_gridspec().get_geometry() == (2, 4)


def test_plot_selected_targets_and_limit():
    e = Explanation({i: rgb_map(i) for i in range(30)})
    e.plot(targets=[4, np.int64(2)])
    assert [ax.get_title() for ax in plt.gcf().axes] == ["Class 4", "Class 2"]
    plt.close("all")
    with pytest.warns(PlotWarning, match="plotting the first 3"):
        e.plot(max_num_plots=3)
    assert [ax.get_title() for ax in plt.gcf().axes] == ["Class 0", "Class 1", "Class 2"]
    plt.close("all")
    with pytest.warns(PlotWarning, match="30 saliency maps requested, plotting the first 24"):
        e.plot()  # default limit 24
    assert len(plt.gcf().axes) == 24


def test_plot_by_label_name():
    e = Explanation({1: rgb_map(1), 2: rgb_map(2)}, label_names=["zero", "one", "two"])
    e.plot(targets="two")
    assert [ax.get_title() for ax in plt.gcf().axes] == ["Class two (2)"]


def test_plot_errors(explanation):
    with pytest.raises(ValueError, match="'nope'.*matplotlib.*cv"):
        explanation.plot(backend="nope")
    with pytest.raises(ValueError, match=r"\[99, 100\]"):
        explanation.plot(targets=[7, 99, 100])
    with pytest.raises(ValueError, match="unknown_label"):
        explanation.plot(targets="unknown_label")
    with pytest.raises(ValueError, match="num_columns"):
        explanation.plot(num_columns=0)


def test_plot_without_matplotlib_asks_to_install(explanation, monkeypatch):
    monkeypatch.setitem(sys.modules, "matplotlib", None)
    monkeypatch.setitem(sys.modules, "matplotlib.pyplot", None)
    with pytest.raises(ImportError, match="pip install matplotlib"):
        explanation.plot()


def test_plot_cv_shows_bgr(explanation, monkeypatch):
    shown = []
    monkeypatch.setattr(cv2, "imshow", lambda title, img: shown.append((title, img.copy())))
    monkeypatch.setattr(cv2, "waitKey", lambda delay=0: -1)
    monkeypatch.setattr(cv2, "destroyWindow", lambda title: None)
    monkeypatch.setattr(explanation_module, "_opencv_gui", lambda: "QT5")
    monkeypatch.setenv("DISPLAY", ":0")  # windows are mocked; the display check must pass
    explanation.plot(backend="cv", targets=[3, 12])
    assert [t for t, _ in shown] == ["Class 3", "Class 12"]
    np.testing.assert_array_equal(shown[0][1], explanation.saliency_map[3][:, :, ::-1])
