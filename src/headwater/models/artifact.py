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


def save_arrays(arrays: Mapping[str, np.ndarray]) -> bytes:
    """Arrays as the bytes of a compressed ``.npz`` (numeric dtypes only, no pickle)."""
    named: dict[str, Any] = {}
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf" or name == "allow_pickle":  # nothing needing pickle
            raise ValueError(f"array {name!r} of dtype {array.dtype}: numbers only")
        named[name] = array
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **named)
    return buffer.getvalue()


def load_arrays(data: bytes, path: PathArg,
                expected: Mapping[str, tuple[str, int]]) -> dict[str, np.ndarray]:
    """The arrays of an ``.npz``; ``expected`` maps name to (dtype kinds, ndim)."""
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            arrays = {name: npz[name] for name in npz.files}
    except (ValueError, OSError, zipfile.BadZipFile, EOFError) as exc:
        raise ModelArtifactError(str(path), f"not a readable .npz: {exc}") from exc
    for name, (kinds, ndim) in expected.items():
        array = arrays.get(name)
        if array is None:
            raise ModelArtifactError(str(path), f"missing array {name!r}")
        if array.dtype.kind not in kinds or array.ndim != ndim:
            raise ModelArtifactError(str(path), f"array {name!r} has dtype {array.dtype} and "
                                                f"{array.ndim} dimensions")
    return arrays

