"""Online prediction: fresh features in, a routed model version's score out, all logged.

A :class:`Predictor` answers a request — entity keys, request values, an optional
request id — by reading the entities' online features (one store read each), building
the model's input (missing values filled by a documented rule and reported,
:mod:`headwater.serving.inputs`), routing it with a :class:`Policy` (champion only,
shadow, a sticky A/B split, a canary) to a version held by a :class:`Deployment`, and
queueing a prediction event — the features as served, the version, the score, the
arm — on the ``predictions`` topic through a :class:`PredictionLog`, off the hot path.

A :class:`Deployment` follows the registry's aliases and swaps new versions in
atomically; requests in flight finish on the versions they started with, and a version
that raises falls back to the one before it.

The HTTP app (:mod:`headwater.serving.app`), its metrics and the uvicorn runner
(:mod:`headwater.serving.server`) need ``pip install 'headwater[serve]'`` and are not
imported here.

Modules (every one public):

- ``predictor``: the in-process prediction path; ``deployment``: the loaded versions;
- ``inputs``: a request's model input; ``messages``: requests and responses;
- ``prediction_log``: prediction events on the ``predictions`` topic;
- ``actions``: contextual decisions served in-process; ``outcomes``: outcomes sent to
  the service; ``updates``: following the model updates a continual trainer publishes;
- ``app``, ``bodies``, ``openapi``, ``metrics``, ``server``: the HTTP service (extra
  ``serve``); ``client``: a client of its admin API.
"""

from headwater.routing import policy_from_spec
from headwater.routing.policies import Canary, ChampionOnly, Policy, Route, Shadow, Split, bucket
from headwater.serving.deployment import Deployment, LoadedModel, Snapshot, VersionSource
from headwater.serving.inputs import InputSpec, neutral_defaults
from headwater.serving.messages import BatchResponse, Prediction, PredictRequest
from headwater.serving.prediction_log import (
    PREDICTIONS_SCHEMA,
    PREDICTIONS_TOPIC,
    PredictionLog,
    PredictionRow,
    encode_features,
    ensure_topic,
)
from headwater.serving.predictor import Predictor

__all__ = [
    "PREDICTIONS_SCHEMA",
    "PREDICTIONS_TOPIC",
    "BatchResponse",
    "Canary",
    "ChampionOnly",
    "Deployment",
    "InputSpec",
    "LoadedModel",
    "Policy",
    "PredictRequest",
    "Prediction",
    "PredictionLog",
    "PredictionRow",
    "Predictor",
    "Route",
    "Shadow",
    "Snapshot",
    "Split",
    "VersionSource",
    "bucket",
    "encode_features",
    "ensure_topic",
    "neutral_defaults",
    "policy_from_spec",
]
