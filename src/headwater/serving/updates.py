"""Following the ``model_updates`` topic: what a continual trainer learnt, served.

An :class:`UpdateFollower` reads the updates topic every ``poll_ms`` from a daemon thread
and hands the newest update of each base version to the :class:`Deployment`, which
applies it with the same atomic swap as a version's promotion
(:meth:`Deployment.apply`): no registry write per update. Updates are cumulative, so of
the updates read together only the newest of each base matters; the others are skipped
without being decoded. An update of a base version no arm serves is counted and told by
the deployment, never applied to another version.

It starts reading at the first update appended after the oldest version the deployment
serves was registered (less a minute, for clocks that differ): a server started between
two updates serves the newest at once.
"""

from __future__ import annotations

from typing import Final

import pyarrow as pa

from headwater.errors import HeadwaterError
from headwater.log import Log
from headwater.registry.updates import MODEL_UPDATES_TOPIC, decode, ensure_updates_topic
from headwater.repeat import Repeater
from headwater.serving.deployment import Deployment

__all__ = ["DEFAULT_POLL_MS", "UpdateFollower"]

#: How often a server looks for new updates (ms).
DEFAULT_POLL_MS: Final = 20.0
#: How far before a version's registration the first read starts: the model store's and
#: the log's clocks may differ (updates read twice are harmless, one missed is not).
CLOCK_SKEW_US: Final = 60_000_000


class UpdateFollower:
    """Applies the updates of ``topic`` to ``deployment`` (see the module docstring)."""

    def __init__(self, log: Log, deployment: Deployment, *,
                 topic: str = MODEL_UPDATES_TOPIC) -> None:
        self.log = log
        self.deployment = deployment
        self.topic = topic
        ensure_updates_topic(log, topic)
        self.position: int | None = None
        self.read_errors = 0
        self._repeater: Repeater | None = None

    def _start_position(self) -> int:
        arms = self.deployment.snapshot.arms.values()
        created = [m.created_at for m in arms if m.created_at]
        if not created:
            return self.log.start_offsets(self.topic)[0]
        return self.log.seek(self.topic, 0, append_time=min(created) - CLOCK_SKEW_US)

    def step(self, max_events: int = 1_000) -> int:
        """Read what is new and apply it; the number of updates the deployment took."""
        if self.position is None:
            if not self.deployment.snapshot.arms:
                return 0  # nothing serves yet: updates wait for a version to apply to
            self.position = self._start_position()
        taken = 0
        while True:
            fetched = self.log.read(self.topic, 0, self.position, max_events)
            batch = fetched.batch
            if batch.num_rows:
                taken += self._apply(batch)
            self.position = fetched.next_offset
            if batch.num_rows < max_events:
                return taken

    def _apply(self, batch: pa.RecordBatch) -> int:
        name = self.deployment.name
        models = batch.column("model").to_pylist()
        bases = batch.column("base").to_pylist()
        newest: dict[int, int] = {}
        for i, (model, base) in enumerate(zip(models, bases, strict=True)):
            if model == name:
                newest[base] = i
        taken = 0
        for i in sorted(newest.values()):
            try:
                updates = decode(batch.slice(i, 1))
            except HeadwaterError as exc:  # a malformed event: counted, told, passed over
                self.deployment.updates_failed += 1
                self.deployment.last_error = f"update unreadable: {exc}"
                if self.deployment.on_problem is not None:
                    self.deployment.on_problem(self.deployment.last_error)
                continue
            for update in updates:
                taken += self.deployment.apply(update)
        return taken

    def start(self, poll_ms: float = DEFAULT_POLL_MS) -> None:
        """Apply what is there now, then follow every ``poll_ms`` until :meth:`stop`."""
        if self._repeater is not None:
            return
        try:
            self.step()
        except HeadwaterError:
            self.read_errors += 1
        self._repeater = Repeater(self.step, poll_ms / 1000.0, name="headwater-model-updates",
                                  on_error=self._failed)
        self._repeater.start()

    def _failed(self, exc: Exception) -> None:
        if not isinstance(exc, HeadwaterError):
            raise exc
        self.read_errors += 1  # the log is away: keep serving, retry

    def stop(self) -> None:
        """Stop following (the applied updates keep serving)."""
        if self._repeater is not None:
            self._repeater.stop()
            self._repeater = None
