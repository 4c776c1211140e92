"""The in-process prediction path: features + request → routed model version → score.

:meth:`Predictor.predict` does, for one request, with plain dict and float work:

1. take the deployment's current :class:`~headwater.serving.deployment.Snapshot` once
   (a swap during the request does not affect it);
2. read the online features of every entity, one store read per entity, fill the
   features an entity has no value for with their defaults, and compute the derived
   features (:class:`~headwater.features.online.FeatureReader`; the feature set's
   helpers feed those and are no model input);
3. route by the key of the routing entity (the feature set's first entity, or
   ``route_by``) with the snapshot's policy;
4. build the model's input row — missing values filled by the rule of
   :mod:`headwater.serving.inputs` and reported — and score it with ``predict_one``;
5. score the shadow arms the same way, queue one prediction event per scored version
   on the :class:`~headwater.serving.prediction_log.PredictionLog` (off the hot path;
   the features defaulted in step 2 are recorded as such) and return a
   :class:`~headwater.serving.messages.Prediction`.

Fallback: when the arm's version raises, its previous version answers; then the
policy's first arm (the champion) and its previous version. Bad input (a
:class:`~headwater.errors.ValidationError`, e.g. text where a number is expected) is the
caller's error and is raised, naming ``request.<name>`` when the value came with the
request: request values are checked by the rule of :mod:`headwater.serving.inputs`
before any model sees them, so a client's mistake is never counted as a model error.
If no version can answer, :class:`~headwater.errors.ModelError` is raised (a 503 over
HTTP). A shadow that raises is counted (``shadow_errors``) and never affects the answer.

:meth:`Predictor.predict_async` is :meth:`Predictor.predict` for an event loop: with an
online store that reads without blocking (Redis), step 2's reads are awaited, batched
with those of the other requests in flight
(:class:`~headwater.store.online.batched.BatchedReads`), and the rest runs as above;
with an in-process store it is :meth:`Predictor.predict` itself.

:meth:`Predictor.predict_batch` answers many requests, scoring each version's rows as
one columnar batch with ``predict``.

A request id names one prediction. The client may give one (else one is made up); it is
echoed, logged with the prediction, and is what outcomes name to be joined with it.
Sent again with the same request — a retry, after a timeout say — it gets the answer
already given, which is neither scored nor logged again (``repeats`` counts these; the
last ``remember_ids`` ids are remembered). Sent again with another request, it is
refused (:class:`~headwater.errors.ConflictError`, a 409 over HTTP). Beyond what one
process remembers (a restart, another server), a repeat is scored and logged again, and
the label joiner keeps the first prediction logged under the id and sets the others
aside: what trains is always the first answer.
"""

from __future__ import annotations

import asyncio
import itertools
import secrets
import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from time import perf_counter  # a duration, not a timestamp: no Clock needed
from typing import Any, cast

import numpy as np

from headwater.errors import ConflictError, ModelError, ValidationError
from headwater.features.online import EntityKey, FeatureReader, entity_key
from headwater.serving.deployment import Deployment, LoadedModel, Snapshot
from headwater.serving.inputs import InputSpec
from headwater.serving.messages import Prediction, PredictRequest
from headwater.serving.prediction_log import (
    PredictionLog,
    PredictionRow,
    encode_entities,
    encode_features,
)
from headwater.store.online.batched import AsyncReads, BatchedReads
from headwater.time import Clock, SystemClock

__all__ = ["Predictor"]

_EMPTY: Mapping[str, Any] = {}
_NO_SPEC: InputSpec = InputSpec(None, {})


def _named(exc: ValidationError, values: Mapping[str, Any],
           request: Mapping[str, Any]) -> ValidationError:
    """A model's complaint about a column, named ``request.<column>`` when the value came
    with the request (features win over request values of the same name)."""
    if exc.field in request and values.get(exc.field) is None:
        return ValidationError(f"request.{exc.field}", exc.reason)
    return exc


def _texts(entities: Mapping[str, EntityKey]) -> Mapping[str, str]:
    """Entity keys as text (an integer key is its decimal text)."""
    if all(type(v) is str for v in entities.values()):
        return cast("Mapping[str, str]", entities)
    return {k: entity_key(v, field=f"entities.{k}") for k, v in entities.items()}


def _inputs_of(snap: Snapshot, arm: str) -> InputSpec:
    """The input spec of the version that answers ``arm`` (one that checks only ranges
    when none is loaded)."""
    model = snap.model_for(arm)
    return _NO_SPEC if model is None else model.inputs


def _names_read(snap: Snapshot, derived: frozenset[str]) -> frozenset[str] | None:
    """The inputs any version of ``snap`` reads, with ``derived`` (``None``: a version
    that does not name them, or none loaded, reads whatever it is sent)."""
    names = set(derived)
    for model in (*snap.arms.values(), *snap.previous.values()):
        if model.inputs.names is None:
            return None
        names.update(model.inputs.names)
    return frozenset(names) if snap.arms else None


class Predictor:
    """Answers prediction requests for one feature set and one deployed model."""

    def __init__(self, reader: FeatureReader, deployment: Deployment, *,
                 log: PredictionLog | None = None, clock: Clock | None = None,
                 route_by: str | None = None, remember_ids: int = 10_000) -> None:
        self.reader = reader
        self.deployment = deployment
        self.log = log
        self.clock: Clock = clock or SystemClock()
        self._by_entity = [(entity, tuple(f.name for f in features))
                           for entity, features in reader.by_entity.items()]
        self.route_by = route_by or (self._by_entity[0][0] if self._by_entity else None)
        self.predictions = 0
        self.fallbacks = 0
        self.model_errors = 0
        self.shadow_errors = 0
        #: Requests answered again from memory (a request id seen before: a retry).
        self.repeats = 0
        self.remember_ids = remember_ids
        #: The request values the feature set's derived features read.
        self._derived_reads = frozenset(i for f in reader.derived for i in f.inputs)
        self._known: tuple[Snapshot | None, frozenset[str] | None] = (None, None)
        self._recent: OrderedDict[str, tuple[Mapping[str, EntityKey], Mapping[str, Any],
                                             Prediction]] = OrderedDict()
        self._recent_lock = threading.Lock()
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)
        #: The event loop's batched reads, when the store reads without blocking.
        self.reads = (BatchedReads(reader.online) if isinstance(reader.online, AsyncReads)
                      else None)

    @property
    def entities(self) -> list[str]:
        """The entities whose keys a request must carry."""
        return [entity for entity, _ in self._by_entity]

    @property
    def ready(self) -> bool:
        """Whether a model version is loaded for the policy's first arm."""
        return self.deployment.snapshot.ready

    async def predict_async(self, entities: Mapping[str, EntityKey],
                            request: Mapping[str, Any] | None = None, *,
                            request_id: str | None = None) -> Prediction:
        """:meth:`predict`, its store reads awaited (see the module docstring)."""
        reads = self.reads
        if reads is None:
            return self.predict(entities, request, request_id=request_id)
        keys = self.reader.keys(entities)
        if len(keys) == 1:
            entries = [await reads.read(*keys[0])]
        else:
            entries = list(await asyncio.gather(*(reads.read(ns, key) for ns, key in keys)))
        return self.predict(entities, request, request_id=request_id, entries=entries)

    def predict(self, entities: Mapping[str, EntityKey],
                request: Mapping[str, Any] | None = None, *,
                request_id: str | None = None,
                entries: list[dict[str, bytes]] | None = None) -> Prediction:
        """Score one request (see the module docstring for the steps). An integer entity
        key is its decimal text (:func:`~headwater.features.online.entity_key`).
        ``entries``: the entities' store blobs read already (:meth:`predict_async`)."""
        entities = _texts(entities)
        snap = self.deployment.snapshot
        now = self.clock.now_us()
        request = request or _EMPTY
        if request_id is not None:
            answered = self._answered(request_id, entities, request, "request_id")
            if answered is not None:
                self.repeats += 1
                return answered
        started = perf_counter()
        values, defaulted, unknowns = self.reader.read_row(entities, now, request,
                                                           entries=entries)
        rid = request_id or f"{self._prefix}-{next(self._ids)}"
        key = entity_key(entities.get(self.route_by, rid)) if self.route_by else rid
        route = snap.policy.choose(key)
        _inputs_of(snap, route.arm).check(request)
        self._check_names(snap, request, "request")
        model, score, row, missing, fallback = self._score(snap, route.arm, values, request)
        self.predictions += 1
        log = self.log
        if log is not None:
            log.record(PredictionRow(
                rid, key, encode_features(row), model.name, model.version, score, route.arm,
                True, missing, now, snap.policy.propensity(route.arm),
                (perf_counter() - started) * 1e3, defaulted, model.update,
                encode_entities(entities)))
        if route.shadows:
            self._shadow(snap, route.shadows, values, request, rid, key, now, defaulted,
                         entities)
        prediction = Prediction(rid, score, model.name, model.version, route.arm,
                                bool(unknowns), missing, fallback, model.update)
        if request_id is not None:
            self._remember(request_id, entities, request, prediction)
        return prediction

    def predict_request(self, request: PredictRequest) -> Prediction:
        """:meth:`predict` of a decoded :class:`~headwater.serving.messages.PredictRequest`."""
        return self.predict(request.entities, request.request, request_id=request.request_id)

    def _score(self, snap: Snapshot, arm: str, values: Mapping[str, Any],
               request: Mapping[str, Any]
               ) -> tuple[LoadedModel, float, dict[str, Any], tuple[str, ...], bool]:
        primary = snap.arms.get(arm)
        if primary is not None:
            row, missing = primary.inputs.build(values, request)
            try:
                return primary, float(primary.model.predict_one(row)), row, missing, False
            except ValidationError as exc:
                if not isinstance(exc, ModelError):
                    raise _named(exc, values, request) from None
                self.model_errors += 1
            except Exception:
                self.model_errors += 1
        return self._fallback(snap, arm, primary, values, request)

    def _fallback(self, snap: Snapshot, arm: str, failed: LoadedModel | None,
                  values: Mapping[str, Any], request: Mapping[str, Any]
                  ) -> tuple[LoadedModel, float, dict[str, Any], tuple[str, ...], bool]:
        first = snap.policy.arms[0]
        tried = {id(failed)}
        for candidate in (snap.previous.get(arm), snap.arms.get(first), snap.previous.get(first),
                          snap.model_for(arm)):
            if candidate is None or id(candidate) in tried:
                continue
            tried.add(id(candidate))
            row, missing = candidate.inputs.build(values, request)
            try:
                score = float(candidate.model.predict_one(row))
            except ValidationError as exc:
                if not isinstance(exc, ModelError):
                    raise _named(exc, values, request) from None
                self.model_errors += 1
                continue
            except Exception:
                self.model_errors += 1
                continue
            self.fallbacks += 1
            return candidate, score, row, missing, True
        raise ModelError(f"no version of model {self.deployment.name!r} could answer "
                         f"(arm {arm!r}; loaded: {sorted(snap.arms)})")

    def _shadow(self, snap: Snapshot, shadows: tuple[str, ...], values: Mapping[str, Any],
                request: Mapping[str, Any], rid: str, key: str, now: int,
                defaulted: tuple[str, ...], entities: Mapping[str, str]) -> None:
        for arm in shadows:
            model = snap.arms.get(arm)
            if model is None:
                continue
            started = perf_counter()
            row, missing = model.inputs.build(values, request)
            try:
                score = float(model.model.predict_one(row))
            except Exception:
                self.shadow_errors += 1
                continue
            if self.log is not None:
                self.log.record(PredictionRow(
                    rid, key, encode_features(row), model.name, model.version, score, arm,
                    False, missing, now, 1.0, (perf_counter() - started) * 1e3,
                    defaulted, model.update, encode_entities(entities)))

    def predict_batch(self, requests: Sequence[PredictRequest]) -> list[Prediction]:
        """Score many requests: one store read per entity and request, then each
        version's rows as one batch (``predict``). A bad request fails the batch with
        the field named ``requests[i].…``. A request id answered before, or earlier in
        the batch, gets that answer again (see :meth:`predict`)."""
        snap = self.deployment.snapshot
        now = self.clock.now_us()
        started = perf_counter()
        repeated: dict[int, Prediction | int] = {}
        first: dict[str, int] = {}
        for i, r in enumerate(requests):
            rid = r.request_id
            if rid is None:
                continue
            answered = self._answered(rid, r.entities, r.request, f"requests[{i}].request_id")
            if answered is not None:
                repeated[i] = answered
            elif rid in first:
                earlier = requests[first[rid]]
                if (earlier.entities, earlier.request) != (r.entities, r.request):
                    raise ConflictError(f"requests[{i}].request_id",
                                        f"{rid!r} names requests[{first[rid]}], another request")
                repeated[i] = first[rid]
            else:
                first[rid] = i
        reads: list[tuple[int, str, str, Mapping[str, Any], Mapping[str, Any], bool, str,
                          tuple[str, ...]]] = []
        for i, r in enumerate(requests):
            if i in repeated:
                continue
            try:
                values, filled, unknowns = self.reader.read_row(r.entities, now, r.request)
            except ValidationError as exc:
                raise ValidationError(f"requests[{i}].{exc.field}", exc.reason) from None
            rid = r.request_id or f"{self._prefix}-{next(self._ids)}"
            key = entity_key(r.entities.get(self.route_by, rid)) if self.route_by else rid
            arm = snap.policy.choose(key).arm
            _inputs_of(snap, arm).check(r.request, f"requests[{i}].request")
            self._check_names(snap, r.request, f"requests[{i}].request")
            reads.append((i, rid, key, values, r.request, bool(unknowns), arm, filled))
        groups: dict[int, list[int]] = {}
        for k, read in enumerate(reads):
            model = snap.model_for(read[6])
            if model is None:
                raise ModelError(f"no version of model {self.deployment.name!r} is loaded")
            groups.setdefault(id(model), []).append(k)
        out: dict[int, Prediction] = {}
        for indices in groups.values():
            model = snap.model_for(reads[indices[0]][6])
            assert model is not None
            built = [model.inputs.build(reads[k][3], reads[k][4]) for k in indices]
            scores = self._batch_scores(model, [row for row, _ in built])
            for j, k in enumerate(indices):
                i, rid, key, got, asked, unknown, arm, defaulted = reads[k]
                row, missing = built[j]
                fallback = snap.arms.get(arm) is not model
                if scores is None:
                    model_i, score, row, missing, fallback = self._score(snap, arm, got, asked)
                else:
                    model_i, score = model, float(scores[j])
                out[i] = Prediction(rid, score, model_i.name, model_i.version, arm, unknown,
                                    missing, fallback, model_i.update)
                keys = _texts(requests[i].entities)
                if self.log is not None:
                    self.log.record(PredictionRow(
                        rid, key, encode_features(row), model_i.name, model_i.version, score,
                        arm, True, missing, now, snap.policy.propensity(arm),
                        (perf_counter() - started) * 1e3, defaulted, model_i.update,
                        encode_entities(keys)))
                shadows = snap.policy.choose(key).shadows
                if shadows:
                    self._shadow(snap, shadows, got, asked, rid, key, now, defaulted, keys)
        for i, source in repeated.items():
            out[i] = source if isinstance(source, Prediction) else out[source]
        self.predictions += len(reads)
        self.repeats += len(repeated)
        for rid, i in first.items():
            self._remember(rid, requests[i].entities, requests[i].request, out[i])
        return [out[i] for i in range(len(requests))]

    def _check_names(self, snap: Snapshot, request: Mapping[str, Any], field: str) -> None:
        """Refuse a request value no served version reads (nor a derived feature), naming
        it ``<field>.<name>``: a misspelt name would otherwise leave the input it meant
        to its neutral default, in silence. A version that does not name its inputs reads
        whatever it is sent: then any name goes."""
        cached, known = self._known
        if cached is not snap:
            known = _names_read(snap, self._derived_reads)
            self._known = (snap, known)
        if known is None:
            return
        for name in request:
            if name not in known:
                raise ValidationError(f"{field}.{name}", f"unknown request value: model "
                                      f"{self.deployment.name!r} reads "
                                      f"{', '.join(sorted(known)) or 'none'}")

    def entity_of(self, request_id: str) -> str | None:
        """The routing entity's key of the request ``request_id`` (the entity its
        prediction is logged for), while it is remembered; ``None`` otherwise."""
        with self._recent_lock:
            found = self._recent.get(request_id)
        if found is None or self.route_by is None or self.route_by not in found[0]:
            return None
        return entity_key(found[0][self.route_by])

    def _answered(self, request_id: str, entities: Mapping[str, EntityKey],
                  request: Mapping[str, Any], field: str) -> Prediction | None:
        """The answer already given to ``request_id``, if it is remembered; a
        :class:`~headwater.errors.ConflictError` if it was another request."""
        with self._recent_lock:
            found = self._recent.get(request_id)
        if found is None:
            return None
        if found[0] != entities or found[1] != request:
            raise ConflictError(field, f"{request_id!r} was the id of another request (other "
                                "entities or request values); a request id names one "
                                "prediction")
        return found[2]

    def _remember(self, request_id: str, entities: Mapping[str, EntityKey],
                  request: Mapping[str, Any], prediction: Prediction) -> None:
        with self._recent_lock:
            recent = self._recent
            recent[request_id] = (entities, request, prediction)
            while len(recent) > self.remember_ids:
                recent.popitem(last=False)

    def _batch_scores(self, model: LoadedModel, rows: list[dict[str, Any]]) -> Any:
        """The scores of ``rows`` in one ``predict`` call, or ``None`` to score them one by
        one (rows of different columns, or the batch call raised)."""
        names = list(rows[0])
        if any(len(row) != len(names) or row.keys() != rows[0].keys() for row in rows):
            return None
        try:
            batch = {name: np.asarray([row[name] for row in rows]) for name in names}
            return model.model.predict(batch)
        except Exception:
            return None
