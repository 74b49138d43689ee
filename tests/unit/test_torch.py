"""``insert_xai`` on PyTorch modules: the maps equal salvo's OpenVINO maps of the same network
converted with ``openvino.convert_model`` (batch 1 and 3, a CNN and a ViT built here), a module
object called twice in one forward is explained at the right call, the user's module is left
as it was, several threads may share one model, and ``import salvo`` does not import torch."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading

import numpy as np
import openvino as ov
import pytest
from support import ESPRESSO, F32_CONFIG, require

require("torch", "pip install torch==2.13.0", "The PyTorch path")

import torch  # noqa: E402

import salvo as xai  # noqa: E402
from salvo.common import SALIENCY_MAP_OUTPUT_NAME  # noqa: E402
from salvo.common.utils import has_xai  # noqa: E402
from salvo.methods.white_box.graph import XAIInsertionError  # noqa: E402
from salvo.methods.white_box.torch import TorchXAIModel  # noqa: E402

SIZE = 32


# ------------------------------------------------------------------ networks built here


class Block(torch.nn.Module):
    """A pre-norm transformer block with hand-written attention (softmax of q k^T)."""

    def __init__(self, dim: int, heads: int = 2) -> None:
        super().__init__()
        self.norm1 = torch.nn.LayerNorm(dim)
        self.qkv = torch.nn.Linear(dim, 3 * dim)
        self.proj = torch.nn.Linear(dim, dim)
        self.norm2 = torch.nn.LayerNorm(dim)
        self.mlp = torch.nn.Sequential(torch.nn.Linear(dim, 2 * dim), torch.nn.GELU(),
                                       torch.nn.Linear(2 * dim, dim))
        self.heads = heads

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        b, n, d = x.shape
        qkv = self.qkv(self.norm1(x)).reshape(b, n, 3, self.heads, d // self.heads)
        q, k, v = qkv.permute(2, 0, 3, 1, 4).unbind(0)
        att = torch.softmax(q @ k.transpose(-2, -1) / (d // self.heads) ** 0.5, dim=-1)
        x = x + self.proj((att @ v).transpose(1, 2).reshape(b, n, d))
        return x + self.mlp(self.norm2(x))


class ViT(torch.nn.Module):
    """Patch 8 on 32 x 32 images (a 4 x 4 grid and a class token), three blocks, 4 classes."""

    def __init__(self, dim: int = 32, patch: int = 8, depth: int = 3, classes: int = 4) -> None:
        super().__init__()
        grid = SIZE // patch
        self.patch = torch.nn.Conv2d(3, dim, patch, patch)
        self.cls = torch.nn.Parameter(torch.randn(1, 1, dim) * 0.5)
        self.pos = torch.nn.Parameter(torch.randn(1, grid * grid + 1, dim) * 0.5)
        self.blocks = torch.nn.Sequential(*[Block(dim) for _ in range(depth)])
        self.norm = torch.nn.LayerNorm(dim)
        self.head = torch.nn.Linear(dim, classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        t = self.patch(x).flatten(2).transpose(1, 2)
        t = torch.cat([self.cls.expand(t.shape[0], -1, -1), t], 1) + self.pos
        return self.head(self.norm(self.blocks(t))[:, 0])


class SharedActivation(torch.nn.Module):
    """One ReLU object at the stem (16 x 32 x 32, h >= C: not a feature map) and at the head
    (64 x 8 x 8); the head flattens with the batch size read at the start, as EfficientNet's
    code does (``x.view(bs, -1)``), and adds in place before the target."""

    def __init__(self) -> None:
        super().__init__()
        self.stem = torch.nn.Conv2d(3, 16, 3, padding=1)
        self.body = torch.nn.Conv2d(16, 32, 3, stride=2, padding=1)
        self.skip = torch.nn.Conv2d(16, 32, 1, stride=2)
        self.head_conv = torch.nn.Conv2d(32, 64, 3, stride=2, padding=1)
        self.act = torch.nn.ReLU()
        self.pool = torch.nn.AdaptiveAvgPool2d(1)
        self.fc = torch.nn.Linear(64, 6)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        bs = x.size(0)
        y = self.act(self.stem(x))
        z = self.body(y)
        z += self.skip(y)  # in place, on a value the replays hand back
        z = self.act(self.head_conv(z))
        return self.fc(self.pool(z).view(bs, -1))


def _cnn() -> torch.nn.Module:
    return torch.nn.Sequential(
        torch.nn.Conv2d(3, 16, 3, padding=1), torch.nn.ReLU(),
        torch.nn.Conv2d(16, 32, 3, stride=2, padding=1), torch.nn.ReLU(),
        torch.nn.AdaptiveAvgPool2d(1), torch.nn.Flatten(), torch.nn.Linear(32, 5),
    )


def _net(kind: str) -> torch.nn.Module:
    torch.manual_seed({"cnn": 0, "vit": 1, "shared": 2}[kind])
    return {"cnn": _cnn, "vit": ViT, "shared": SharedActivation}[kind]().eval()


def _images(n: int, seed: int) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((n, 3, SIZE, SIZE)).astype(np.float32)


def _openvino_maps(net: torch.nn.Module, method: str, x: np.ndarray,
                   embed_scaling: bool = False) -> np.ndarray:
    """salvo's OpenVINO map of ``net`` converted with ``openvino.convert_model`` (dynamic
    input, built for the data's shape)."""
    converted = ov.convert_model(net, example_input=torch.zeros(1, 3, SIZE, SIZE))
    model = xai.insert_xai(converted, xai.Task.CLASSIFICATION, explain_method=method,
                           input_shape=(3, SIZE, SIZE), embed_scaling=embed_scaling)
    compiled = ov.Core().compile_model(model, "CPU", F32_CONFIG)
    return np.asarray(compiled(x)[SALIENCY_MAP_OUTPUT_NAME])


def _corr(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(np.ravel(a).astype(np.float64), np.ravel(b).astype(np.float64))[0, 1])


# ------------------------------------------------------------------ equal to the OpenVINO maps


@pytest.mark.parametrize(("kind", "method", "shape"), [
    ("cnn", "reciprocam", (5, 16, 16)),
    ("cnn", "activationmap", (16, 16)),
    ("vit", "vitreciprocam", (4, 4, 4)),
    ("shared", "reciprocam", (6, 8, 8)),
])
@pytest.mark.parametrize("batch", [1, 3])
def test_torch_maps_equal_the_openvino_maps_of_the_converted_network(kind, method, shape, batch):
    net = _net(kind)
    x = _images(batch, seed=batch)
    want = _openvino_maps(net, method, x)
    explained = xai.insert_xai(net, xai.Task.CLASSIFICATION, embed_scaling=False,
                               explain_method=None if method != "activationmap" else method)
    out = explained(torch.from_numpy(x))
    got = out[SALIENCY_MAP_OUTPUT_NAME].numpy()
    assert got.shape == want.shape == (batch, *shape)
    assert got.dtype == np.float32
    for i in range(batch):
        for k in range(got.shape[1] if got.ndim == 4 else 1):
            a, b = (got[i, k], want[i, k]) if got.ndim == 4 else (got[i], want[i])
            assert _corr(a, b) >= 0.99, (i, k, _corr(a, b))
    np.testing.assert_allclose(got, want, rtol=1e-3, atol=1e-4)
    # the prediction is the module's own output
    np.testing.assert_allclose(out["prediction"].numpy(), net(torch.from_numpy(x)).detach()
                               .numpy(), rtol=1e-6, atol=1e-6)
    # negative control: another network's map is not this one's
    if kind == "cnn" and method == "reciprocam":
        other = _openvino_maps(_net("cnn").apply(_reset), method, x)
        assert _corr(got[0, 0], other[0, 0]) < 0.9


def _reset(module: torch.nn.Module) -> None:
    if isinstance(module, (torch.nn.Conv2d, torch.nn.Linear)):
        torch.manual_seed(99)
        module.reset_parameters()


def test_embedded_scaling_is_the_openvino_scaling():
    net = _net("cnn")
    x = _images(2, seed=5)
    got = xai.insert_xai(net, "classification")(torch.from_numpy(x))[SALIENCY_MAP_OUTPUT_NAME]
    want = _openvino_maps(net, "reciprocam", x, embed_scaling=True)
    assert got.dtype == torch.uint8 and want.dtype == np.uint8
    assert int(got.amax(dim=(2, 3)).min()) == 255 and int(got.amin(dim=(2, 3)).max()) == 0
    assert np.abs(got.numpy().astype(int) - want.astype(int)).max() <= 1


def test_a_shared_module_is_explained_at_the_call_that_makes_the_feature_map():
    explained = xai.insert_xai(_net("shared"), xai.Task.CLASSIFICATION)
    target = explained.target_for(torch.zeros(1, 3, SIZE, SIZE))
    assert target.name == "act" and target.kind == "cnn"
    out = explained(torch.from_numpy(_images(2, seed=3)))
    assert out[SALIENCY_MAP_OUTPUT_NAME].shape == (2, 6, 8, 8)  # head call: 64 x 8 x 8


def test_vit_target_layer_and_options():
    net = _net("vit")
    x = torch.from_numpy(_images(1, seed=7))
    named = xai.insert_xai(net, xai.Task.CLASSIFICATION, target_layer="blocks.2",
                           embed_scaling=False)(x)[SALIENCY_MAP_OUTPUT_NAME]
    auto = xai.insert_xai(net, xai.Task.CLASSIFICATION, embed_scaling=False)(x)
    np.testing.assert_array_equal(named.numpy(), auto[SALIENCY_MAP_OUTPUT_NAME].numpy())
    earlier = xai.insert_xai(net, xai.Task.CLASSIFICATION, embed_scaling=False, num_blocks=2)(x)
    assert not torch.equal(earlier[SALIENCY_MAP_OUTPUT_NAME], auto[SALIENCY_MAP_OUTPUT_NAME])
    plain = xai.insert_xai(net, "classification", explain_method="vitreciprocam",
                           use_gaussian=False, embed_scaling=False)(x)
    converted = ov.convert_model(net, example_input=torch.zeros(1, 3, SIZE, SIZE))
    model = xai.insert_xai(converted, "classification", explain_method="vitreciprocam",
                           use_gaussian=False, input_shape=(3, SIZE, SIZE), embed_scaling=False)
    want = ov.Core().compile_model(model, "CPU", F32_CONFIG)(x.numpy())[SALIENCY_MAP_OUTPUT_NAME]
    np.testing.assert_allclose(plain[SALIENCY_MAP_OUTPUT_NAME].numpy(), want, rtol=1e-3,
                               atol=1e-4)


# ------------------------------------------------------------------ the user's module


def test_the_original_module_is_unchanged():
    net = _net("shared")
    x = torch.from_numpy(_images(2, seed=11))
    before = net(x).detach().clone()
    params = {k: v.detach().clone() for k, v in net.state_dict().items()}
    forward = net.forward
    explained = xai.insert_xai(net, xai.Task.CLASSIFICATION)
    explained(x)
    assert explained.model is not net and isinstance(explained, TorchXAIModel)
    assert explained.has_xai and has_xai(explained) and not has_xai(net)
    assert net.forward == forward and "forward" not in vars(net)
    assert not any("forward" in vars(m) for m in net.modules())
    assert torch.equal(net(x), before)
    for k, v in net.state_dict().items():
        assert torch.equal(v, params[k]), k
    assert xai.insert_xai(explained, xai.Task.CLASSIFICATION) is explained


def test_several_threads_share_one_model():
    explained = xai.insert_xai(_net("shared"), xai.Task.CLASSIFICATION, embed_scaling=False)
    inputs = [torch.from_numpy(_images(1 + i % 2, seed=20 + i)) for i in range(6)]
    serial = [explained(x)[SALIENCY_MAP_OUTPUT_NAME] for x in inputs]
    results: dict[int, torch.Tensor] = {}
    errors: list[BaseException] = []
    barrier = threading.Barrier(len(inputs))

    def work(i: int) -> None:
        try:
            barrier.wait()
            results[i] = explained(inputs[i])[SALIENCY_MAP_OUTPUT_NAME]
        except BaseException as exc:  # reported below
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(i,)) for i in range(len(inputs))]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    for i, want in enumerate(serial):
        assert torch.equal(results[i], want), i


# ------------------------------------------------------------------ bad input


def test_bad_arguments_name_themselves():
    net = _net("cnn")
    with pytest.raises(ValueError, match=r"target_layer '6x'.*Close names: '6'"):
        xai.insert_xai(net, xai.Task.CLASSIFICATION, target_layer="6x")
    with pytest.raises(ValueError, match="classification only"):
        xai.insert_xai(net, xai.Task.DETECTION)
    with pytest.raises(ValueError, match="'rise' is not available for PyTorch"):
        xai.insert_xai(net, xai.Task.CLASSIFICATION, explain_method="rise")
    with pytest.raises(TypeError, match="num_masks"):
        xai.insert_xai(net, xai.Task.CLASSIFICATION, num_masks=5)
    with pytest.raises(ValueError, match="embed_scaling"):
        xai.insert_xai(net, xai.Task.CLASSIFICATION, embed_scaling="yes")
    explained = xai.insert_xai(net, xai.Task.CLASSIFICATION, target_layer="5")
    with pytest.raises(XAIInsertionError, match=r"'5' outputs \(1, 32\)"):
        explained(torch.zeros(1, 3, SIZE, SIZE))  # Flatten's output is no feature map
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        explained(np.zeros((1, 3, SIZE, SIZE), np.float32))


# ------------------------------------------------------------------ torch stays optional


def _child_env() -> dict[str, str]:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in sys.path if p)
    return env


def test_import_salvo_does_not_import_torch():
    code = ("import sys, salvo, salvo.methods.factory, salvo.api\n"
            "import openvino as ov, numpy as np\n"
            "from salvo.testing.planted import planted_cnn\n"
            "salvo.insert_xai(planted_cnn(size=56).model, salvo.Task.CLASSIFICATION)\n"
            "print('torch' in sys.modules)\n")
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          env=_child_env(), timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == "False"


# ------------------------------------------------------------------ EfficientNet-Lite0

# the espresso cup in the coffee photo after efficientnet_lite0_preprocess (the same box as
# tests/integration/test_whitebox_real.py)
CUP_BOX_224 = (48, 160, 24, 104)  # x0, x1, y0, y1
#: Address space the child may add once its model is loaded (the reference's torch path asks
#: for about 20 GB on this model; salvo's stays well under this).
LIMIT_MB = 1536

_EFFICIENTNET_CHILD = textwrap.dedent("""
    import json, resource, sys
    import numpy as np, torch
    from efficientnet_lite_pytorch import EfficientNet
    import salvo as xai
    from salvo import zoo
    net = EfficientNet.from_name("efficientnet-lite0")
    state = torch.load(zoo.efficientnet_lite0_weights_path(), map_location="cpu",
                       weights_only=True)
    net.load_state_dict(state)
    net.eval()
    x = torch.from_numpy(zoo.efficientnet_lite0_preprocess(zoo.sample_image("coffee")))
    pages = int(open("/proc/self/statm").read().split()[0])
    limit = pages * resource.getpagesize() + int(sys.argv[1]) * 2**20
    resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
    out = xai.insert_xai(net, xai.Task.CLASSIFICATION, embed_scaling=False)(x)
    print(json.dumps({"top1": int(out["prediction"].argmax()),
                      "map": out["saliency_map"][0, int(sys.argv[2])].tolist()}))
""")


@pytest.mark.slow
def test_efficientnet_lite0_in_torch_explains_the_espresso_under_a_memory_limit(lite0,
                                                                                lite0_coffee):
    require("efficientnet_lite_pytorch", "pip install --no-deps efficientnet-lite-pytorch==0.1.0",
            "EfficientNet-Lite0 in PyTorch")
    done = subprocess.run([sys.executable, "-c", _EFFICIENTNET_CHILD, str(LIMIT_MB),
                           str(ESPRESSO)], capture_output=True, text=True, env=_child_env(),
                          timeout=600, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    result = json.loads(done.stdout.strip().splitlines()[-1])
    assert result["top1"] == ESPRESSO
    got = np.asarray(result["map"], np.float32)
    assert got.shape == (7, 7)
    model = xai.insert_xai(lite0, xai.Task.CLASSIFICATION, embed_scaling=False)
    want = ov.Core().compile_model(model, "CPU", F32_CONFIG)(lite0_coffee)[
        SALIENCY_MAP_OUTPUT_NAME][0, ESPRESSO]
    assert _corr(got, want) >= 0.99
    import cv2

    up = cv2.resize(got, (224, 224), interpolation=cv2.INTER_LINEAR)
    x0, x1, y0, y1 = CUP_BOX_224
    y, x = np.unravel_index(int(np.argmax(up)), up.shape)
    assert x0 <= x < x1 and y0 <= y < y1, (x, y)
    fy, fx = np.unravel_index(int(np.argmax(up[::-1])), up.shape)  # negative control
    assert not (x0 <= fx < x1 and y0 <= fy < y1)


def test_the_memory_limit_of_the_efficientnet_child_does_bite():
    """The child's limit is real: asking for more than it allows fails inside the child."""
    code = textwrap.dedent("""
        import resource, sys, torch
        pages = int(open("/proc/self/statm").read().split()[0])
        limit = pages * resource.getpagesize() + int(sys.argv[1]) * 2**20
        resource.setrlimit(resource.RLIMIT_AS, (limit, resource.RLIM_INFINITY))
        try:
            torch.empty(int(sys.argv[1]) * 2**20, dtype=torch.uint8).fill_(1)
        except RuntimeError:
            print("refused")
    """)
    done = subprocess.run([sys.executable, "-c", code, str(LIMIT_MB)], capture_output=True,
                          text=True, env=_child_env(), timeout=120, check=False)
    assert done.returncode == 0, done.stderr[-2000:]
    assert done.stdout.strip() == "refused"

