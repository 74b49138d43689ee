"""Inputs that used to be silently misread get a correct result or a clear error (issue 12, §2).

Each test names the argument and the value the error must mention; the negative controls show
the same call with a valid value still works (and gives the same map where the forms are
equivalent).
"""

from __future__ import annotations

import io
import pickle
import re
import shutil
import struct

import numpy as np
import openvino as ov
import openvino.opset13 as ops
import pytest

import salvo as xai
from salvo import zoo
from salvo.inference import InferenceEngine
from salvo.metrics import InsertionDeletionAUC
from salvo.testing.planted import batchable, planted_cnn, planted_image
from salvo.common import targets as targets_module
from salvo.common.targets import resolve_targets
from support import F32, logits


@pytest.fixture(scope="module")
def u8():
    """A uint8 NHWC planted CNN (divides by 255 inside the graph, like exported models)."""
    return planted_cnn(size=56, layout="NHWC", element_type="u8")


@pytest.fixture(scope="module")
def u8_image(u8):
    return planted_image(u8, "random", seed=3)  # (1, 56, 56, 3) uint8


@pytest.fixture(scope="module")
def f32():
    return planted_cnn(size=56)


@pytest.fixture(scope="module")
def whitebox(f32):
    return xai.Explainer(f32.model, xai.Task.CLASSIFICATION, inference_precision=F32)


def raw(explainer, data, **kwargs):
    return explainer(data, resize=False, colormap=False, **kwargs)


# ------------------------------------------------------------------ model element type


@pytest.mark.parametrize("mode", ["whitebox", "blackbox"])
def test_unit_floats_for_a_uint8_model_are_an_error_not_a_black_image(u8, u8_image, mode):
    extra = {"explain_method": "rise", "num_masks": 32, "progress": False} \
        if mode == "blackbox" else {}
    explainer = xai.Explainer(u8.model, xai.Task.CLASSIFICATION, explain_mode=mode,
                              postprocess_fn=logits, inference_precision=F32, **extra)
    unit = u8_image.astype(np.float32) / 255.0  # 0.25 .. 0.75: truncation made it all 0
    with pytest.raises(ValueError, match=r"fractional values.*uint8.*0\.\.255.*multiply it by "
                                         r"255"):
        explainer(unit, targets=0)


@pytest.mark.parametrize("offset, lo, hi", [(-300, -5, None), (900, None, 1000)])
def test_ints_outside_0_255_for_a_uint8_model_are_an_error_not_wrapped(u8, u8_image, offset,
                                                                       lo, hi):
    explainer = xai.Explainer(u8.model, xai.Task.CLASSIFICATION, inference_precision=F32)
    x = u8_image.astype(np.int64)
    x[0, 0, 0, 0] = -5 if lo is not None else 1000  # -5 wrapped to 251, 1000 to 232
    with pytest.raises(ValueError, match=r"outside the range 0\.\.255 of the model input"):
        explainer(x, targets=0)


def test_whole_floats_and_wide_ints_in_range_give_the_uint8_map(u8, u8_image):
    explainer = xai.Explainer(u8.model, xai.Task.CLASSIFICATION, inference_precision=F32)
    expected = raw(explainer, u8_image, targets=-1)
    for form in (u8_image.astype(np.float32), u8_image.astype(np.float64),
                 u8_image.astype(np.int64), u8_image.astype(np.uint16)):
        got = raw(explainer, form, targets=-1)
        for k in expected.targets:
            np.testing.assert_array_equal(got.saliency_map[k], expected.saliency_map[k])


def test_method_objects_refuse_unit_floats_for_a_uint8_model(u8, u8_image):
    from salvo.methods.black_box.rise import RISE, resolve_params

    rise = RISE(batchable(u8), logits, precision=F32, progress=False)
    unit = u8_image.astype(np.float32) / 255.0
    with pytest.raises(ValueError, match="x \\(the preprocessed input\\).*multiply it by 255"):
        rise.run(unit, [0], resolve_params(num_masks=32))
    with pytest.raises(ValueError, match="multiply it by 255"):
        rise.explain(unit, 0, num_masks=32)
    ok = rise.run(u8_image.astype(np.float64), [0], resolve_params(num_masks=32))
    same = rise.run(u8_image, [0], resolve_params(num_masks=32))
    np.testing.assert_array_equal(ok.maps, same.maps)


def test_float16_overflow_is_an_error(f32):
    x = ops.parameter([1, 3, 8, 8], np.float16, name="half")
    model = ov.Model([ops.reduce_mean(ops.convert(x, np.float32), [2, 3], keep_dims=False)],
                     [x])
    explainer = xai.Explainer(model, "classification", explain_mode="blackbox",
                              explain_method="rise", postprocess_fn=logits, num_masks=32,
                              num_cells=2, progress=False)
    with pytest.raises(ValueError, match="overflow the model input"):
        explainer(np.full((1, 3, 8, 8), 1e6), targets=0)


def test_ragged_and_non_numeric_inputs_say_what_is_wrong(whitebox):
    with pytest.raises(ValueError, match="not a rectangular array"):
        whitebox([[[1.0, 2.0, 3.0]], [[1.0, 2.0]]])
    with pytest.raises(TypeError, match="real numbers.*dtype <U"):
        whitebox(np.full((1, 3, 56, 56), "a"))
    with pytest.raises(TypeError, match="real numbers.*bool"):
        whitebox(np.ones((1, 3, 56, 56), bool))


def test_metrics_refuse_unit_floats_and_wrapped_ints_for_a_uint8_model(u8, u8_image):
    metric = InsertionDeletionAUC(batchable(u8), lambda im: im[None], logits, precision=F32)
    image = u8_image[0]
    smap = np.random.default_rng(0).random((56, 56))
    good = metric(smap, 0, image, steps=4)
    assert set(good) == {"insertion", "deletion"}
    # the same picture as whole floats: the same scores
    assert metric(smap, 0, image.astype(np.float32), steps=4) == good
    with pytest.raises(ValueError, match=r"input_image \(after preprocess_fn\).*multiply it by "
                                         r"255"):
        metric(smap, 0, image.astype(np.float32) / 255.0, steps=4)
    wide = image.astype(np.int64)
    wide[0, 0, 0] = 1000
    with pytest.raises(ValueError, match=r"outside the range 0\.\.255"):
        metric(smap, 0, wide, steps=4)


# ------------------------------------------------------------------ label names and targets


def test_label_names_string_is_an_error_not_one_label_per_character(whitebox, f32):
    x = planted_image(f32)
    with pytest.raises(TypeError, match="label_names.*not a single string"):
        whitebox(x, targets=0, label_names="cat")
    with pytest.raises(TypeError, match=r"label_names\[0\] must be a str"):
        whitebox(x, targets=0, label_names=[1, 2, 3])
    with pytest.raises(TypeError, match="label_names.*not a set"):
        whitebox(x, targets=0, label_names={"a", "b", "c"})
    with pytest.raises(TypeError, match="keys of an {index: name} dict must be class indices"):
        whitebox(x, targets=0, label_names={"a": 0, "b": 1, "c": 2})
    with pytest.raises(ValueError, match=r"keys 0\.\.1 .*missing \[1\]"):
        whitebox(x, targets=0, label_names={0: "a", 2: "c"})


def test_index_name_mapping_is_read_by_index(whitebox, f32):
    x = planted_image(f32)
    e = whitebox(x, targets="beta", label_names={2: "gamma", 0: "alpha", 1: "beta"})
    assert e.targets == [1] and e.label_names == ["alpha", "beta", "gamma"]
    json_like = {"0": "alpha", "1": "beta", "2": "gamma"}
    assert whitebox(x, targets="gamma", label_names=json_like).targets == [2]
    assert targets_module.check_label_names(("a", "b")) == ["a", "b"]
    assert targets_module.check_label_names(np.array(["a", "b"])) == ["a", "b"]


def test_a_synonym_of_a_label_is_found_as_the_cli_finds_it(whitebox, f32):
    names = ["tabby, tabby cat", "tiger cat", "Persian cat"]
    x = planted_image(f32)
    assert whitebox(x, targets="tabby", label_names=names).targets == [0]
    assert whitebox(x, targets=["persian  CAT", "tabby cat"], label_names=names).targets == [2, 0]
    # an exact label wins over a synonym; two equal labels, or two labels sharing a synonym,
    # are ambiguous
    match_label = targets_module.match_label
    assert match_label("crane", ["crane, bird", "crane", "x"]) == 1
    with pytest.raises(ValueError, match=r"'crane' is ambiguous: it names classes 0 .*, 1 "):
        match_label("crane", ["crane", "crane", "x"])
    with pytest.raises(ValueError, match=r"'Crane' is ambiguous: it names classes 0 .*, 2 "):
        match_label("Crane", ["crane, bird", "x", "crane, machine"])


def test_imagenet_tabby_in_python_as_on_the_command_line():
    labels = zoo.imagenet_labels()
    assert labels[281] == "tabby, tabby cat"
    assert resolve_targets("tabby", 1000, labels) == [281]
    assert resolve_targets(["tabby", "espresso", 281], 1000, labels) == [281, 967]
    with pytest.raises(ValueError, match="'crane' is ambiguous.*134.*517"):
        resolve_targets("crane", 1000, labels)


@pytest.mark.parametrize("bad", [1.0, np.float32(1), np.array(1.0), 12.5, b"\x01", {0, 1},
                                 np.array([[0, 1]])])
def test_non_integer_targets_name_the_argument(whitebox, f32, bad):
    with pytest.raises(ValueError, match="targets") as info:
        whitebox(planted_image(f32), targets=bad)
    assert "not iterable" not in str(info.value) and "0-d" not in str(info.value)


def test_zero_d_integer_array_is_an_index(whitebox, f32):
    x = planted_image(f32, "random")
    a = raw(whitebox, x, targets=np.array(1))
    b = raw(whitebox, x, targets=1)
    assert a.targets == b.targets == [1]
    np.testing.assert_array_equal(a.saliency_map[1], b.saliency_map[1])


def test_minus_one_in_a_list_does_not_contradict_itself(whitebox, f32):
    with pytest.raises(ValueError, match=r"-1 means every class only on its own") as info:
        whitebox(planted_image(f32), targets=[-1])
    assert "or -1 for all" not in str(info.value)
    with pytest.raises(ValueError, match="class index -2 is out of range"):
        whitebox(planted_image(f32), targets=[-2])


def test_target_layer_must_be_a_name(f32):
    with pytest.raises(TypeError, match=r"target_layer must be the friendly name.*got 12 \(int\)"):
        xai.Explainer(f32.model, xai.Task.CLASSIFICATION, target_layer=12)
    with pytest.raises(TypeError, match="target_layer"):
        xai.insert_xai(f32.model, xai.Task.CLASSIFICATION, target_layer=12)


def test_embed_scaling_and_visual_flags_are_booleans(f32, whitebox):
    with pytest.raises(ValueError, match="embed_scaling must be True or False, got 'no'"):
        xai.Explainer(f32.model, xai.Task.CLASSIFICATION, embed_scaling="no")
    x = planted_image(f32)
    for flag in ("scaling", "resize", "colormap", "overlay"):
        with pytest.raises(ValueError, match=f"{flag} must be True or False"):
            whitebox(x, targets=0, **{flag: "no"})
    with pytest.raises(ValueError, match="overlay_weight"):
        whitebox(x, targets=0, overlay_weight=True)
    with pytest.raises(ValueError, match="progress must be True"):
        whitebox(x, targets=0, progress="yes")


# ------------------------------------------------------------------ method parameters


@pytest.fixture(scope="module")
def rise_explainer(f32):
    return xai.Explainer(batchable(f32), xai.Task.CLASSIFICATION, postprocess_fn=logits,
                         explain_mode="blackbox", explain_method="rise", progress=False,
                         inference_precision=F32, num_masks=64, num_cells=4)


def test_numpy_scalars_are_accepted_where_python_numbers_are(rise_explainer, f32):
    x = planted_image(f32, "random", seed=1)
    plain = raw(rise_explainer, x, targets=0, prob=0.5, num_masks=64, seed=7)
    numpy = raw(rise_explainer, x, targets=np.int64(0), prob=np.float32(0.5),
                num_masks=np.int32(64), seed=np.uint64(7), scale_output=np.bool_(True))
    np.testing.assert_array_equal(plain.saliency_map[0], numpy.saliency_map[0])
    weighted = rise_explainer(x, targets=0, overlay=True, overlay_weight=np.float32(0.25),
                              original_input_image=np.full((56, 56, 3), 100, np.uint8))
    assert weighted.saliency_map[0].dtype == np.uint8


@pytest.mark.parametrize("params, match", [
    (dict(num_masks=True), "num_masks must be a positive int, got True"),
    (dict(num_masks=64.0), "num_masks must be a positive int, got 64.0"),
    (dict(seed=2 ** 64), r"seed must be an int in \[0, 2\*\*64\)"),
    (dict(seed=2 ** 64 + 7), r"seed must be an int in \[0, 2\*\*64\)"),
    (dict(seed=-1), r"seed must be an int in \[0, 2\*\*64\)"),
    (dict(prob=True), r"prob must be in \(0, 1\)"),
    (dict(scale_output="no"), "scale_output must be True or False"),
    (dict(num_cells=np.float64(4)), "num_cells must be a positive int"),
])
def test_bad_rise_parameters_name_themselves(rise_explainer, f32, params, match):
    with pytest.raises(ValueError, match=match):
        rise_explainer(planted_image(f32), targets=0, **params)


def test_large_seed_does_not_alias_a_small_one(rise_explainer, f32):
    x = planted_image(f32, "random", seed=1)
    small = raw(rise_explainer, x, targets=0, seed=5)
    largest = raw(rise_explainer, x, targets=0, seed=2 ** 64 - 1)
    assert not np.array_equal(small.saliency_map[0], largest.saliency_map[0])
    with pytest.raises(ValueError, match="seed"):
        rise_explainer(x, targets=0, seed=2 ** 64 + 5)  # used to run as seed 5


def test_aise_accepts_numpy_scalars(f32):
    explainer = xai.Explainer(batchable(f32), xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode="blackbox", explain_method="aise", progress=False,
                              inference_precision=F32)
    x = planted_image(f32, "random", seed=2)
    a = raw(explainer, x, targets=1, num_iterations_per_kernel=3, solver_epsilon=0.1,
            kernel_widths=[0.25])
    b = raw(explainer, x, targets=np.int16(1), num_iterations_per_kernel=np.int64(3),
            solver_epsilon=np.float64(0.1), kernel_widths=np.array([0.25], np.float32))
    np.testing.assert_array_equal(a.saliency_map[1], b.saliency_map[1])
    with pytest.raises(ValueError, match="num_iterations_per_kernel must be a positive int"):
        explainer(x, targets=1, num_iterations_per_kernel=True)


def test_engine_keywords_take_numpy_scalars_not_bools(f32):
    for bad, match in ((dict(batch_size=True), "batch_size must be a positive int, got True"),
                       (dict(num_requests=True), "num_requests must be a positive int"),
                       (dict(timeout=True), "timeout must be a positive number"),
                       (dict(precision=32), "precision must be one of")):
        with pytest.raises(ValueError, match=match):
            InferenceEngine(f32.model, **bad)
    engine = InferenceEngine(f32.model, batch_size=np.int64(1), num_requests=np.int32(2),
                             timeout=np.float32(30))
    assert (engine.batch_size, engine.num_requests, engine.timeout) == (1, 2, 30.0)


def test_aise_tiny_kernel_width_is_a_point_not_a_division_by_zero(f32):
    """Found by the property tests: a width whose square underflows crashed the mask kernel."""
    explainer = xai.Explainer(batchable(f32), xai.Task.CLASSIFICATION, postprocess_fn=logits,
                              explain_mode="blackbox", explain_method="aise", progress=False,
                              inference_precision=F32)
    x = planted_image(f32, "random", seed=2)
    tiny = raw(explainer, x, targets=1, num_iterations_per_kernel=3, kernel_widths=[1e-306])
    assert tiny.saliency_map[1].shape == (56, 56) and tiny.saliency_map[1].max() == 255
    # every width below the floor is the same one-point Gaussian
    other = raw(explainer, x, targets=1, num_iterations_per_kernel=3, kernel_widths=[1e-200])
    np.testing.assert_array_equal(tiny.saliency_map[1], other.saliency_map[1])


# ------------------------------------------------------------------ dynamic shapes


def test_dynamic_hw_model_takes_input_shape(f32):
    dynamic = batchable(f32)
    dynamic.reshape({dynamic.inputs[0]: ov.PartialShape([-1, 3, -1, -1])})
    with pytest.raises(ValueError, match="input_shape") as info:
        xai.Explainer(dynamic, xai.Task.CLASSIFICATION)
    assert "Explainer(..., input_shape=" in str(info.value)
    explainer = xai.Explainer(dynamic, xai.Task.CLASSIFICATION, input_shape=(3, 56, 56),
                              inference_precision=F32)
    assert explainer.explain_mode is xai.ExplainMode.WHITEBOX
    assert dynamic.inputs[0].get_partial_shape().is_dynamic  # the user's model is untouched
    static = xai.Explainer(batchable(f32), xai.Task.CLASSIFICATION, inference_precision=F32)
    x = planted_image(f32, "random")
    a, b = raw(explainer, x, targets=-1), raw(static, x, targets=-1)
    for k in range(3):
        np.testing.assert_array_equal(a.saliency_map[k], b.saliency_map[k])
    with pytest.raises(ValueError, match="dimension 1 is fixed to 3"):
        xai.Explainer(dynamic, xai.Task.CLASSIFICATION, input_shape=(4, 56, 56))
    with pytest.raises(ValueError, match="input_shape must have 3 dimensions"):
        xai.Explainer(dynamic, xai.Task.CLASSIFICATION, input_shape=(56, 56))


# ------------------------------------------------------------------ model files


@pytest.fixture(scope="module")
def model_files(tmp_path_factory, f32):
    folder = tmp_path_factory.mktemp("model_files")
    ov.save_model(f32.model, str(folder / "good.xml"), compress_to_fp16=False)
    shutil.copy(folder / "good.xml", folder / "nobin.xml")
    text = (folder / "good.xml").read_bytes()
    (folder / "truncated.xml").write_bytes(text[: len(text) // 2])
    (folder / "truncated.bin").write_bytes((folder / "good.bin").read_bytes())
    shutil.copy(folder / "good.xml", folder / "short.xml")
    (folder / "short.bin").write_bytes((folder / "good.bin").read_bytes()[:100])
    (folder / "garbage.onnx").write_bytes(b"\x00garbage" * 40)
    return folder


@pytest.mark.parametrize("name, cause", [
    ("nobin.xml", r"Empty weights data in bin file or bin file cannot be found!"),
    ("truncated.xml", r" at offset \d+"),  # pugixml's parse error, e.g. "tags mismatch"
    ("short.xml", r"Incorrect weights in bin file!"),
    ("garbage.onnx", r"Unable to read the model"),
])
def test_model_file_errors_keep_openvinos_cause_on_the_first_line(model_files, name, cause):
    with pytest.raises(ValueError) as info:
        xai.Explainer(model_files / name, xai.Task.CLASSIFICATION)
    first = str(info.value).splitlines()[0]
    assert re.search(cause, first), first
    assert name in first and "core.cpp" not in first, first
    with pytest.raises(ValueError) as info:
        xai.insert_xai(model_files / name, xai.Task.CLASSIFICATION)
    assert re.search(cause, str(info.value).splitlines()[0])


def test_compile_errors_keep_openvinos_cause_on_the_first_line(f32):
    with pytest.raises(RuntimeError) as info:
        InferenceEngine(f32.model, config={"NUM_STREAMS": "abc"})
    first = str(info.value).splitlines()[0]
    assert "Could not read number of streams from str: abc" in first, first


# ------------------------------------------------------------------ zoo weight reader


def _legacy_header() -> bytes:
    sys_info = {"protocol_version": 1001, "little_endian": True,
                "type_sizes": {"short": 2, "int": 4, "long": 4}}
    return b"".join(pickle.dumps(v, protocol=2) for v in (zoo._LEGACY_MAGIC, 1001, sys_info))


def _op_global(module: str, name: str) -> bytes:
    return b"c" + module.encode() + b"\n" + name.encode() + b"\n"


def _op_str(s: str) -> bytes:
    raw_bytes = s.encode()
    return b"X" + struct.pack("<I", len(raw_bytes)) + raw_bytes


def _op_int(i: int) -> bytes:
    if -(1 << 31) <= i < 1 << 31:
        return b"J" + struct.pack("<i", i)
    return b"\x8a\x08" + struct.pack("<q", i)  # LONG1 with 8 bytes


def _op_tuple(*items: bytes) -> bytes:
    return b"(" + b"".join(items) + b"t"


def _tensor_file(numel: int, size: tuple[int, ...], stride: tuple[int, ...],
                 stored: int | None = None) -> bytes:
    """A legacy torch file with one float tensor ``w`` over a storage of ``numel`` floats."""
    pid = _op_tuple(_op_str("storage"), _op_global("torch", "FloatStorage"), _op_str("k0"),
                    _op_str("cpu"), _op_int(numel), b"N")
    hooks = _op_global("collections", "OrderedDict") + b")R"
    args = _op_tuple(pid + b"Q", _op_int(0), _op_tuple(*map(_op_int, size)),
                     _op_tuple(*map(_op_int, stride)), b"\x89", hooks)
    tensor = _op_global("torch._utils", "_rebuild_tensor_v2") + args + b"R"
    main = (b"\x80\x02" + _op_global("collections", "OrderedDict") + b")R(" + _op_str("w")
            + tensor + b"u.")
    stored = numel if stored is None else stored
    return (_legacy_header() + main + pickle.dumps(["k0"], protocol=2)
            + struct.pack("<q", numel) + np.zeros(stored, "<f4").tobytes())


def test_zero_stride_tensor_is_refused_not_expanded():
    crafted = _tensor_file(1, (20000, 20000), (0, 0))
    assert len(crafted) < 400  # a few hundred bytes that used to become a 1.6 GB array
    with pytest.raises(ValueError, match=r"400000000 elements, more than the 1 its storage "
                                         "holds"):
        zoo.load_legacy_torch_state_dict(io.BytesIO(crafted))
    ok = zoo.load_legacy_torch_state_dict(io.BytesIO(_tensor_file(6, (2, 3), (3, 1))))
    assert ok["w"].shape == (2, 3)


def test_empty_or_cut_weight_stream_is_a_value_error():
    with pytest.raises(ValueError, match="empty or truncated"):
        zoo.load_legacy_torch_state_dict(io.BytesIO(b""))
    with pytest.raises(ValueError, match="empty or truncated"):
        zoo.load_legacy_torch_state_dict(io.BytesIO(_legacy_header()[:40]))


def test_storage_size_beyond_the_file_is_refused_before_reading():
    crafted = _tensor_file(1 << 40, (2,), (1,), stored=2)  # claims 4 TB of floats
    with pytest.raises(ValueError, match="truncated weights file"):
        zoo.load_legacy_torch_state_dict(io.BytesIO(crafted))


def test_the_command_line_matches_names_as_python_does():
    from salvo.cli.models import parse_targets

    labels = zoo.imagenet_labels()
    for text in ("tabby", "Tabby, Tabby Cat", "tabby, tabby cat", "TABBY CAT"):
        assert parse_targets(text, labels, 1000) == resolve_targets(text, 1000, labels) == [281]
    assert parse_targets("tabby,espresso,281", labels, 1000) == [281, 967]
    with pytest.raises(ValueError, match="targets"):
        parse_targets("no such class", labels, 1000)
