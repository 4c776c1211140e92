"""A canary watched live: windows of traffic read from the log, decided by the controller.

:class:`CanaryWatch` follows the ``predictions`` topic (each served prediction: its arm
and the version that actually answered) and the ``training_examples`` topic (the same
predictions joined with their labels). It gathers, per arm, the scores of served
requests, the *errors* — requests of the canary arm answered by another version because
the canary's version raised (the predictor fell back) — their latencies, and the
labelled scores. Once
the canary's window holds ``window`` requests it hands both windows to the
:class:`~headwater.evaluation.canary.CanaryController`, which advances the ramp, promotes
at the end, or rolls back on a breached guardrail, and starts new windows.

Every logged prediction carries its latency in the service, so the p99-latency guardrail
applies with the error-rate, model-metric and score-drift ones. The controller's
``apply`` decides where the policy goes: :func:`apply_over_http` sets it on a running
server through its admin API.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field

import numpy as np
import pyarrow as pa

from headwater.errors import ValidationError
from headwater.evaluation.canary import CanaryController, Step
from headwater.evaluation.guardrails import ArmWindow
from headwater.labels import TRAINING_EXAMPLES_SCHEMA, TRAINING_EXAMPLES_TOPIC
from headwater.log import Log
from headwater.log.follow import TopicFollower
from headwater.routing.policies import Policy
from headwater.serving.client import AdminClient
from headwater.serving.prediction_log import PREDICTIONS_TOPIC, ensure_readable

__all__ = ["CanaryWatch", "apply_over_http"]


@dataclass
class _Window:
    scores: list[float] = field(default_factory=list)
    latency_ms: list[float] = field(default_factory=list)
    errors: int = 0
    y: list[float] = field(default_factory=list)
    y_scores: list[float] = field(default_factory=list)

    def arm_window(self) -> ArmWindow:
        return ArmWindow.of(np.array(self.scores), errors=self.errors,
                            latency_ms=np.array(self.latency_ms), y=np.array(self.y),
                            y_scores=np.array(self.y_scores))


class CanaryWatch:
    """Feeds ``controller`` windows of live traffic read from ``log`` (see the module)."""

    def __init__(self, log: Log, controller: CanaryController, *, window: int = 500,
                 predictions: str = PREDICTIONS_TOPIC,
                 examples: str = TRAINING_EXAMPLES_TOPIC) -> None:
        if window < 1:
            raise ValidationError("window", "must be at least one request")
        self.log = log
        self.controller = controller
        self.window = window
        self.topics = (predictions, examples)
        ensure_readable(log, predictions)
        log.ensure_topic(examples, TRAINING_EXAMPLES_SCHEMA)
        self._followers = {t: TopicFollower(log, t) for t in self.topics}
        self.steps: list[Step] = []
        self._windows = {controller.canary_arm: _Window(), controller.stable_arm: _Window()}

    @property
    def done(self) -> bool:
        """Whether the ramp has ended (promoted or rolled back)."""
        return self.controller.ramp.status in ("promoted", "rolled_back")

    def _read(self, topic: str) -> pa.Table | None:
        table = self._followers[topic].read()
        return None if table is None else table.filter(table.column("served"))

    def step(self) -> Step | None:
        """Read what is new; decide when the canary's window is full."""
        canary_arm = self.controller.canary_arm
        predictions = self._read(self.topics[0])
        if predictions is not None:
            for arm, version, score, latency in zip(
                    predictions.column("arm").to_pylist(),
                    predictions.column("version").to_pylist(),
                    predictions.column("score").to_pylist(),
                    predictions.column("latency_ms").to_pylist(), strict=True):
                window = self._windows.get(arm)
                if window is None:
                    continue
                window.scores.append(score)
                window.latency_ms.append(latency)
                if arm == canary_arm and version != self.controller.version:
                    window.errors += 1  # the canary's version failed: another one answered
        examples = self._read(self.topics[1])
        if examples is not None:
            for arm, label, score in zip(examples.column("arm").to_pylist(),
                                         examples.column("label").to_pylist(),
                                         examples.column("score").to_pylist(), strict=True):
                window = self._windows.get(arm)
                if window is not None:
                    window.y.append(label)
                    window.y_scores.append(score)
        if self.done or len(self._windows[canary_arm].scores) < self.window:
            return None
        step = self.controller.observe(self._windows[canary_arm].arm_window(),
                                       self._windows[self.controller.stable_arm].arm_window())
        self.steps.append(step)
        if step.action != "hold":
            self._windows = {arm: _Window() for arm in self._windows}
        return step


def apply_over_http(url: str, token: str | None, *, actor: str = "canary"
                    ) -> Callable[[Policy], None]:
    """An ``apply`` for the controller: ``PUT /admin/policy`` on the server at ``url``."""

    server = AdminClient(url, token)

    def apply(policy: Policy) -> None:
        server.set_policy(policy.describe(), reason="canary ramp", actor=actor)

    return apply
