"""Streaming features: one definition for live serving, backfill and training data.

A feature aggregates a source's events per entity over a window of tiles (sliding,
tumbling or lifetime), with an optional filter and TTL. The same aggregation monoids
(:mod:`headwater.features.aggregations`) are folded by the live engine and reduced by the
point-in-time join (:mod:`headwater.features.pointintime`), so training data and serving
cannot disagree. The :class:`FeatureEngine` keeps an online store current from the log
(:func:`backfill` replays it) and a :class:`FeatureReader` reads a feature set's values
back for a request. :func:`training_frame` joins them to a pandas DataFrame of entity
keys and times (``pip install 'headwater[pandas]'``). The rules are in
``docs/design/features.md``.
"""

from headwater.features.aggregations import Aggregation, make
from headwater.features.definitions import (
    DerivedFeature,
    Entity,
    Feature,
    FeatureSet,
    Filter,
    RequestSource,
    StreamSource,
    TableSource,
)
from headwater.features.engine import FeatureEngine, backfill
from headwater.features.frames import training_frame
from headwater.features.online import FeatureReader
from headwater.features.pointintime import (
    Queries,
    Sources,
    feature_values,
    model_inputs,
    point_in_time,
)
from headwater.features.windows import Lifetime, Sliding, Tumbling, Window

__all__ = [
    "Aggregation",
    "DerivedFeature",
    "Entity",
    "Feature",
    "FeatureEngine",
    "FeatureReader",
    "FeatureSet",
    "Filter",
    "Lifetime",
    "Queries",
    "RequestSource",
    "Sliding",
    "Sources",
    "StreamSource",
    "TableSource",
    "Tumbling",
    "Window",
    "backfill",
    "feature_values",
    "make",
    "model_inputs",
    "point_in_time",
    "training_frame",
]
