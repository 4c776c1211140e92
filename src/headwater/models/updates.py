"""Model updates: what a continual trainer sends servers between two versions.

A registered version is a checkpoint. Between checkpoints a continual trainer keeps
learning, and what it learnt travels as an **update**: the bytes that turn the
checkpoint into the trainer's live model. An update is *cumulative* — relative to its
checkpoint, never to the update before it — so a server that missed updates applies the
newest alone, and a served state is exactly (version, update).

Two kinds, chosen per adapter by what is cheaper:

- ``"delta"``: a model offering :class:`Deltas` (the built-in linear models) sends the
  coordinates of its learnt state that changed since the checkpoint, with their new
  values — exact, and small while a model learns a few coordinates;
- ``"snapshot"``: any other model sends its saved artifact's files (River: its pickled
  state; PyTorch: its safetensors state dict; a scikit-learn estimator with
  ``partial_fit``: the estimator), read back by the artifact's own format.

:class:`UpdateMaker` makes the updates of one live model (trainer side);
:func:`apply_update` builds the updated model from the checkpoint's (server side)
without touching the checkpoint's, so a server swaps the result in atomically.
A model that cannot learn continually — a scikit-learn estimator without
``partial_fit``, which refits from scratch on each batch — is refused by
:func:`check_continual` with :class:`~headwater.errors.NotContinualError`.

>>> import numpy as np
>>> from headwater.models import LogisticRegression
>>> x, y = {"x": np.array([-1.0, 1.0] * 20)}, np.array([0, 1] * 20)
>>> checkpoint = LogisticRegression()
>>> checkpoint.learn(x, y)
>>> live = UpdateMaker(LogisticRegression())
>>> live.model.learn(x, y)
>>> live.checkpoint()
>>> live.model.learn(x, 1 - y)
>>> update = live.update()
>>> update.kind
'delta'
>>> served = apply_update(checkpoint, update)
>>> bool(np.array_equal(served.predict(x), live.model.predict(x)))
True
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Final, Literal, Protocol, Self, runtime_checkable

import msgspec
import numpy as np

from headwater.errors import ModelArtifactError, NotContinualError
from headwater.models.artifact import MANIFEST, read_manifest
from headwater.models.formats import FORMATS
from headwater.models.protocol import Model

__all__ = [
    "KINDS",
    "Deltas",
    "Update",
    "UpdateKind",
    "UpdateMaker",
    "apply_update",
    "check_continual",
    "pack_arrays",
    "unpack_arrays",
]

UpdateKind = Literal["delta", "snapshot"]
#: The kinds of update, see the module docstring.
KINDS: Final[tuple[UpdateKind, ...]] = ("delta", "snapshot")


@runtime_checkable
class Deltas(Protocol):
    """A model whose updates can be deltas: the narrow protocol an adapter adds.

    ``delta_mark`` is what later deltas are relative to (kept by the trainer, never
    sent); ``delta_since(mark)`` the delta from that state to this one, or ``None``
    when none can be made (the marked model had learnt nothing, say: a snapshot is
    sent instead); ``with_delta(payload)`` a new model, this one with the delta
    applied (this one unchanged).
    """

    def delta_mark(self) -> object: ...

    def delta_since(self, mark: object) -> bytes | None: ...

    def with_delta(self, payload: bytes) -> Self: ...


@dataclass(frozen=True, slots=True)
class Update:
    """One update: its kind and its bytes."""

    kind: UpdateKind
    payload: bytes


def check_continual(model: Model) -> None:
    """Refuse a model that cannot learn continually (an adapter says so by a
    ``continual`` attribute that is false)."""
    if getattr(model, "continual", True) is False:
        why = getattr(model, "not_continual_reason", "it relearns from scratch on every batch")
        raise NotContinualError("model", f"{type(model).__name__} cannot learn continually: "
                                         f"{why}")


class UpdateMaker:
    """The updates of one live model, relative to its last :meth:`checkpoint`."""

    def __init__(self, model: Model) -> None:
        check_continual(model)
        self.model = model
        self._mark: object = None

    def checkpoint(self) -> None:
        """The live model is now a checkpoint: later updates are relative to it."""
        self._mark = self.model.delta_mark() if isinstance(self.model, Deltas) else None

    def update(self) -> Update:
        """The update from the last checkpoint to the live model now."""
        if isinstance(self.model, Deltas) and self._mark is not None:
            payload = self.model.delta_since(self._mark)
            if payload is not None:
                return Update("delta", payload)
        return Update("snapshot", snapshot(self.model))


def apply_update(base: Model, update: Update) -> Model:
    """The model ``update`` makes of checkpoint ``base`` (``base`` is unchanged).

    A snapshot must hold the base's own format: it is read with the trust the base was
    loaded with (a server loads a pickle-based version only when its operator opted in).
    Raises :class:`~headwater.errors.ModelArtifactError` for an update that does not
    fit the base.
    """
    if update.kind == "delta":
        if not isinstance(base, Deltas):
            raise ModelArtifactError("update", f"a delta cannot apply to a "
                                               f"{type(base).__name__}")
        return base.with_delta(update.payload)
    if update.kind == "snapshot":
        return restore(update.payload, base.format)
    raise ModelArtifactError("update", f"unknown kind {update.kind!r}; known: {list(KINDS)}")


def snapshot(model: Model) -> bytes:
    """The files of ``model``'s saved artifact, as one msgpack map of name to bytes."""
    directory = Path(tempfile.mkdtemp(prefix="headwater-update-"))
    try:
        model.save(directory / "model")
        files = {p.name: p.read_bytes() for p in sorted((directory / "model").iterdir())}
    finally:
        shutil.rmtree(directory, ignore_errors=True)
    return msgspec.msgpack.encode(files)


def restore(payload: bytes, format: str) -> Model:
    """The model a :func:`snapshot` holds, which must be of ``format``."""
    try:
        files = msgspec.msgpack.decode(payload, type=dict[str, bytes])
    except msgspec.DecodeError as exc:
        raise ModelArtifactError("update", f"not a snapshot: {exc}") from exc
    directory = Path(tempfile.mkdtemp(prefix="headwater-update-"))
    try:
        for name, data in files.items():
            if Path(name).name != name or name in ("", ".", ".."):
                raise ModelArtifactError("update", f"bad file name {name!r} in a snapshot")
            (directory / name).write_bytes(data)
        if MANIFEST not in files:
            raise ModelArtifactError("update", f"a snapshot without {MANIFEST}")
        found = read_manifest(directory).format
        if found != format:
            raise ModelArtifactError("update", f"a snapshot of format {found!r} cannot "
                                               f"update a model of format {format!r}")
        return FORMATS[format](directory, True)
    finally:
        shutil.rmtree(directory, ignore_errors=True)


def pack_arrays(arrays: dict[str, np.ndarray]) -> bytes:
    """Numeric arrays as msgpack (dtype, shape, raw bytes): no compression, no pickle."""
    out: dict[str, tuple[str, list[int], bytes]] = {}
    for name, array in arrays.items():
        if array.dtype.kind not in "biuf":
            raise ValueError(f"array {name!r} of dtype {array.dtype}: numbers only")
        out[name] = (array.dtype.str, list(array.shape), np.ascontiguousarray(array).tobytes())
    return msgspec.msgpack.encode(out)


def unpack_arrays(payload: bytes) -> dict[str, np.ndarray]:
    """The arrays of :func:`pack_arrays` (read-only views of ``payload``)."""
    try:
        raw = msgspec.msgpack.decode(payload, type=dict[str, tuple[str, list[int], bytes]])
        arrays: dict[str, Any] = {}
        for name, (dtype, shape, data) in raw.items():
            kind = np.dtype(dtype)
            if kind.kind not in "biuf":
                raise ValueError(f"array {name!r} of dtype {kind}: numbers only")
            arrays[name] = np.frombuffer(data, dtype=kind).reshape(shape)
    except (msgspec.DecodeError, ValueError, TypeError) as exc:
        raise ModelArtifactError("update", f"unreadable arrays: {exc}") from exc
    return arrays
