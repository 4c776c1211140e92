"""The on-disk form of a saved model: a manifest and weight files.

A saved model is a directory holding ``headwater-model.json`` and the weight files it
lists with their sha256. The manifest is written last (atomically, by rename), so a
directory whose save was interrupted has no manifest, or one whose hashes do not match,
and loading it fails with :class:`~headwater.errors.ModelArtifactError` naming the
file and the reason — never with a half-loaded model. The manifest names a *format*
from a fixed list (:data:`headwater.models.FORMATS`); no class path or code is ever
read from an artifact. Formats that need pickle load only with ``trusted=True`` (which a
model store gives only when its operator has opted in: see
:meth:`headwater.registry.ModelRegistry.load`).

>>> import tempfile
>>> directory = tempfile.mkdtemp()
>>> write_artifact(directory, Manifest("demo", 1, "demo.Model", {"alpha": 1.0}, ["x"]),
...                {"weights.bin": b"123"})
>>> manifest = read_manifest(directory)
>>> manifest.params, read_file(directory, manifest, "weights.bin")
({'alpha': 1.0}, b'123')
"""

from __future__ import annotations

import hashlib
import io
import zipfile
from collections.abc import Mapping
from pathlib import Path
from typing import Any, Final

import msgspec
import numpy as np

from headwater.errors import ModelArtifactError, UntrustedArtifactError
from headwater.fsync import FsyncPolicy, atomic_write
from headwater.models.protocol import PathArg

__all__ = [
    "MANIFEST",
    "Manifest",
    "load_arrays",
    "read_file",
    "read_manifest",
    "require_trusted",
    "save_arrays",
    "write_artifact",
]

#: A saved model is a working directory: the model store copies it and makes the copy
#: durable under the settings' policy (:class:`~headwater.registry.LocalArtifacts`).
_FSYNC: Final[FsyncPolicy] = "never"

#: The manifest's file name inside an artifact directory.
MANIFEST: Final = "headwater-model.json"


class Manifest(msgspec.Struct, frozen=True):
    """What ``headwater-model.json`` holds.

    ``adapter`` names the adapter class for people (and, within a format, which of its
    fixed classes to build); ``features`` the input columns in order (``None`` before
    anything was learnt); ``files`` each weight file's sha256; ``metadata`` what the
    format adds (library versions, column kinds).
    """

    format: str
    format_version: int
    adapter: str
    params: dict[str, Any]
    features: list[str] | None
    files: dict[str, str] = {}
    metadata: dict[str, Any] = {}


def write_artifact(directory: PathArg, manifest: Manifest, files: Mapping[str, bytes]) -> None:
    """Write ``files`` into ``directory``, then the manifest listing them with their sha256."""
    root = Path(directory)
    root.mkdir(parents=True, exist_ok=True)
    hashes: dict[str, str] = {}
    for name, data in files.items():
        if name == MANIFEST or Path(name).name != name:
            raise ValueError(f"bad weight file name {name!r}")
        atomic_write(root / name, data, fsync=_FSYNC)
        hashes[name] = hashlib.sha256(data).hexdigest()
    atomic_write(root / MANIFEST, msgspec.json.format(
        msgspec.json.encode(msgspec.structs.replace(manifest, files=hashes)), indent=2),
        fsync=_FSYNC)


def read_manifest(directory: PathArg, format: str | None = None) -> Manifest:
    """The manifest of an artifact directory, checked (and of ``format``, if given)."""
    path = Path(directory) / MANIFEST
    try:
        raw = path.read_bytes()
    except FileNotFoundError:
        raise ModelArtifactError(str(path), "missing: not a saved model directory") from None
    except OSError as exc:
        raise ModelArtifactError(str(path), f"cannot be read: {exc}") from exc
    try:
        manifest = msgspec.json.decode(raw, type=Manifest)
    except msgspec.DecodeError as exc:
        raise ModelArtifactError(str(path), f"invalid manifest: {exc}") from exc
    if format is not None and manifest.format != format:
        raise ModelArtifactError(str(path), f"format is {manifest.format!r}, expected "
                                            f"{format!r}")
    return manifest


def read_file(directory: PathArg, manifest: Manifest, name: str) -> bytes:
    """A weight file's bytes, after checking them against the manifest's sha256."""
    path = Path(directory) / name
    expected = manifest.files.get(name)
    if expected is None:
        raise ModelArtifactError(str(path), f"not listed in {MANIFEST}")
    try:
        data = path.read_bytes()
    except FileNotFoundError:
        raise ModelArtifactError(str(path), "missing weight file") from None
    except OSError as exc:
        raise ModelArtifactError(str(path), f"cannot be read: {exc}") from exc
    if hashlib.sha256(data).hexdigest() != expected:
        raise ModelArtifactError(str(path), f"content does not match the sha256 in {MANIFEST}")
    return data


def require_trusted(directory: PathArg, manifest: Manifest, trusted: bool) -> None:
    """Refuse a format that runs code on load unless the caller vouches for the artifact."""
    if not trusted:
        risk = f"format {manifest.format!r} is loaded with pickle, which can run code"
        raise UntrustedArtifactError(
            str(Path(directory) / MANIFEST),
            f"{risk}: load it with trusted=True only if you trust whoever wrote it",
            risk=risk)


#: A 1-D array of at least this many entries, at most a quarter of them set (hashed
#: weights: one slot per hashed value seen), is stored as the entries that are set.
_SPARSE_MIN: Final = 4096
_SPARSE_PARTS: Final = ("@index", "@values", "@size", "@fill")


def save_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Arrays as the bytes of an uncompressed ``.npz`` (numeric dtypes only, no pickle).

    Nothing is zlib-compressed: saving a version is on a continual trainer's hot path,
    and deflating 2^18-wide weight arrays cost more than learning the rows in between.
    A long 1-D array that mostly holds one value (zero, or its last entry: a per-slot
    rate still at its start) is kept as the entries that differ instead (``name@index``,
    ``name@values``, ``name@size`` and ``name@fill``; :func:`load_arrays` rebuilds it),
    so a model with few hashed values seen stays small on disk.
    """
    named: dict[str, Any] = {}
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf" or name == "allow_pickle" or "@" in name:
            raise ValueError(f"array {name!r} of dtype {array.dtype}: numbers only, "
                             "and no '@' in a name")
        if array.ndim == 1 and len(array) >= _SPARSE_MIN:
            fill = array[-1:]  # one value of the array's dtype
            index = np.flatnonzero(array != fill)
            if len(index) * 2 > len(array):  # mostly something else: try zero
                fill = np.zeros(1, array.dtype)
                index = np.flatnonzero(array)
            if len(index) * 4 <= len(array):
                named[f"{name}@index"] = index.astype(np.int64)
                named[f"{name}@values"] = array[index]
                named[f"{name}@size"] = np.int64(len(array))
                named[f"{name}@fill"] = fill[0]
                continue
        named[name] = array
    buffer = io.BytesIO()
    np.savez(buffer, **named)
    return buffer.getvalue()


def load_arrays(data: bytes, path: PathArg,
                expected: Mapping[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz`` (compressed or not, sparse entries rebuilt; see
    :func:`save_arrays`); ``expected`` maps name to (dtype kinds, ndim)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelArtifactError(str(path), f"not a readable .npz: {exc}") from exc
    for name in [n[:-len("@size")] for n in arrays if n.endswith("@size")]:
        arrays[name] = _dense(arrays, name, path)
    for name, (kinds, ndim) in expected.items():
        array = arrays.get(name)
        if array is None:
            raise ModelArtifactError(str(path), f"missing array {name!r}")
        if array.dtype.kind not in kinds or array.ndim != ndim:
            raise ModelArtifactError(str(path), f"array {name!r} has dtype {array.dtype} and "
                                                f"{array.ndim} dimensions")
    return arrays


def _dense(arrays: dict[str, np.ndarray], name: str, path: PathArg) -> np.ndarray:
    """The array ``name`` rebuilt from its sparse parts (removed from ``arrays``)."""
    index, values, size, fill = (arrays.pop(name + part, None) for part in _SPARSE_PARTS)
    if index is None or values is None or size is None or fill is None:
        raise ModelArtifactError(str(path), f"array {name!r} is missing a sparse part")
    if (size.ndim or fill.ndim or index.ndim != 1 or index.dtype.kind != "i"
            or index.shape != values.shape or fill.dtype != values.dtype
            or size.dtype.kind != "i" or not 0 <= int(size) <= 1 << 40):
        raise ModelArtifactError(str(path), f"array {name!r}: sparse parts do not fit")
    if len(index) and (int(index.min()) < 0 or int(index.max()) >= int(size)):
        raise ModelArtifactError(str(path), f"array {name!r}: an index outside 0..{int(size)}")
    dense = np.full(int(size), fill, dtype=values.dtype)
    dense[index] = values
    return dense

