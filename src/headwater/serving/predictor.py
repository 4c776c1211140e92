"""The in-process prediction path: features + request → routed model version → score.

:meth:`Predictor.predict` does, for one request, with plain dict and float work:

1. take the deployment's current :class:`~headwater.serving.deployment.Snapshot` once
   (a swap during the request does not affect it);
2. read the online features of every entity, one store read per entity, and compute
   the derived features (:class:`~headwater.features.online.FeatureReader`);
3. route by the key of the routing entity (the feature set's first entity, or
   ``route_by``) with the snapshot's policy;
4. build the model's input row — missing values filled by the rule of
   :mod:`headwater.serving.inputs` and reported — and score it with ``predict_one``;
5. score the shadow arms the same way, queue one prediction event per scored version
   on the :class:`~headwater.serving.prediction_log.PredictionLog` (off the hot path)
   and return a :class:`~headwater.serving.messages.Prediction`.

Fallback: when the arm's version raises, its previous version answers; then the
policy's first arm (the champion) and its previous version. Bad input (a
:class:`~headwater.errors.ValidationError`, e.g. text where a number is expected) is the
caller's error and is raised as it is. If no version can answer,
:class:`~headwater.errors.ModelError` is raised (a 503 over HTTP). A shadow that
raises is counted (``shadow_errors``) and never affects the answer.

:meth:`Predictor.predict_batch` answers many requests, scoring each version's rows as
one columnar batch with ``predict``.
"""

from __future__ import annotations

import itertools
import secrets
from collections.abc import Mapping, Sequence
from time import perf_counter  # a duration, not a timestamp: no Clock needed
from typing import Any

import numpy as np

from headwater.errors import ModelError, ValidationError
from headwater.features.online import EntityKey, FeatureReader, entity_key
from headwater.serving.deployment import Deployment, LoadedModel, Snapshot
from headwater.serving.messages import Prediction, PredictRequest
from headwater.serving.prediction_log import PredictionLog
from headwater.time import Clock, SystemClock

__all__ = ["Predictor"]

_EMPTY: Mapping[str, Any] = {}


class Predictor:
    """Answers prediction requests for one feature set and one deployed model."""

    def __init__(self, reader: FeatureReader, deployment: Deployment, *,
                 log: PredictionLog | None = None, clock: Clock | None = None,
                 route_by: str | None = None) -> None:
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
        self._ids = itertools.count(1)
        self._prefix = secrets.token_hex(4)

    @property
    def entities(self) -> list[str]:
        """The entities whose keys a request must carry."""
        return [entity for entity, _ in self._by_entity]

    @property
    def ready(self) -> bool:
        """Whether a model version is loaded for the policy's first arm."""
        return self.deployment.snapshot.ready

    def predict(self, entities: Mapping[str, EntityKey],
                request: Mapping[str, Any] | None = None,
                *, request_id: str | None = None) -> Prediction:
        """Score one request (see the module docstring for the steps)."""
        snap = self.deployment.snapshot
        now = self.clock.now_us()
        request = request or _EMPTY
        started = perf_counter()
        values = self.reader.read(entities, now, request)
        rid = request_id or f"{self._prefix}-{next(self._ids)}"
        key = entity_key(entities.get(self.route_by, rid)) if self.route_by else rid
        route = snap.policy.choose(key)
        unknown = self._unknown(values)
        model, score, row, missing, fallback = self._score(snap, route.arm, values, request)
        self.predictions += 1
        log = self.log
        if log is not None:
            log.record(rid, key, row, model.name, model.version, score, route.arm, True,
                       missing, now, snap.policy.propensity(route.arm),
                       (perf_counter() - started) * 1e3)
        if route.shadows:
            self._shadow(snap, route.shadows, values, request, rid, key, now)
        return Prediction(rid, score, model.name, model.version, route.arm, unknown, missing,
                          fallback)

    def predict_request(self, request: PredictRequest) -> Prediction:
        """:meth:`predict` of a decoded :class:`~headwater.serving.messages.PredictRequest`."""
        return self.predict(request.entities, request.request, request_id=request.request_id)

    def _unknown(self, values: Mapping[str, Any]) -> bool:
        for _, names in self._by_entity:
            for name in names:
                if values[name] is not None:
                    break
            else:
                return True
        return False

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
                    raise
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
                    raise
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
                request: Mapping[str, Any], rid: str, key: str, now: int) -> None:
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
                self.log.record(rid, key, row, model.name, model.version, score, arm, False,
                                missing, now, 1.0, (perf_counter() - started) * 1e3)

    def predict_batch(self, requests: Sequence[PredictRequest]) -> list[Prediction]:
        """Score many requests: one store read per entity and request, then each
        version's rows as one batch (``predict``). A bad request fails the batch with
        the field named ``requests[i].…``."""
        snap = self.deployment.snapshot
        now = self.clock.now_us()
        started = perf_counter()
        reads: list[tuple[str, str, Mapping[str, Any], Mapping[str, Any], bool, str]] = []
        for i, r in enumerate(requests):
            try:
                values = self.reader.read(r.entities, now, r.request)
            except ValidationError as exc:
                raise ValidationError(f"requests[{i}].{exc.field}", exc.reason) from None
            rid = r.request_id or f"{self._prefix}-{next(self._ids)}"
            key = entity_key(r.entities.get(self.route_by, rid)) if self.route_by else rid
            reads.append((rid, key, values, r.request, self._unknown(values),
                          snap.policy.choose(key).arm))
        groups: dict[int, list[int]] = {}
        for i, (*_, arm) in enumerate(reads):
            model = snap.model_for(arm)
            if model is None:
                raise ModelError(f"no version of model {self.deployment.name!r} is loaded")
            groups.setdefault(id(model), []).append(i)
        out: list[Prediction | None] = [None] * len(reads)
        for indices in groups.values():
            model = snap.model_for(reads[indices[0]][5])
            assert model is not None
            built = [model.inputs.build(reads[i][2], reads[i][3]) for i in indices]
            scores = self._batch_scores(model, [row for row, _ in built])
            for j, i in enumerate(indices):
                rid, key, got, asked, unknown, arm = reads[i]
                row, missing = built[j]
                fallback = snap.arms.get(arm) is not model
                if scores is None:
                    model_i, score, row, missing, fallback = self._score(snap, arm, got, asked)
                else:
                    model_i, score = model, float(scores[j])
                out[i] = Prediction(rid, score, model_i.name, model_i.version, arm, unknown,
                                    missing, fallback)
                if self.log is not None:
                    self.log.record(rid, key, row, model_i.name, model_i.version, score, arm,
                                    True, missing, now, snap.policy.propensity(arm),
                                    (perf_counter() - started) * 1e3)
                shadows = snap.policy.choose(key).shadows
                if shadows:
                    self._shadow(snap, shadows, got, asked, rid, key, now)
        self.predictions += len(reads)
        return [p for p in out if p is not None]

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
