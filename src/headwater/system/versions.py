"""The first version: a model that has learnt nothing, behind every arm of the policy.

A server answers only from a version, a label joins only to a logged prediction, and a
trainer learns only from joined labels: a loop started with no version never starts.
:func:`first_version` breaks the circle the way a user would by hand — it registers a
model built by the configuration's ``model_class`` (it answers its neutral score) and
points every arm's alias at it — and does nothing when the model has a version already.
"""

from __future__ import annotations

import tempfile
from pathlib import Path

from headwater.registry import Creator, Lineage, ModelRegistry, ModelVersion
from headwater.system.config import SystemConfig

__all__ = ["first_version"]


def first_version(registry: ModelRegistry, config: SystemConfig, *,
                  actor: str = "headwater") -> ModelVersion | None:
    """Register and promote the first version of ``config.model`` when it has none;
    return it, or ``None`` when the model had a version already."""
    if any(s.name == config.model for s in registry.models()) and \
            registry.versions(config.model):
        return None
    fresh = config.model_class()
    with tempfile.TemporaryDirectory(prefix="headwater-first-") as scratch:
        path = Path(scratch) / "model"
        fresh.save(path)
        version = registry.register(config.model, path, lineage=Lineage(
            hyperparameters=dict(fresh.params()), feature_set=config.features.version,
            created_by=Creator(trainer=actor, trigger="manual",
                               reason="the first version: nothing learnt yet")))
    for alias in config.arms:
        registry.promote(config.model, version.version, alias, actor=actor,
                         reason="the first version, so the loop can start")
    return version
