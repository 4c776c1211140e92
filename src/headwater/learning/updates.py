"""The update publisher: a continual trainer's live model, sent to servers through the log.

A continual trainer learns every batch of examples as it arrives; an
:class:`UpdatePublisher` appends what it learnt to the ``model_updates`` topic
(:mod:`headwater.registry.updates`) every ``every_rows`` examples, or every
``every_ms`` while any example is left unsent, so a label reaches the served model
within a second. Each update is cumulative from the *base* version — the last
checkpoint the gate promoted, which servers serve — and names the exact slice it
learnt since that checkpoint (the examples topic's partitions and offset ranges). A
promoted checkpoint rebases the publisher (:meth:`UpdatePublisher.rebase`); a rejected
one does not, as servers keep serving the base (and the live model still descends from
it). The payload is chosen by the model's adapter (:mod:`headwater.models.updates`).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Final

from headwater.errors import PayloadTooLargeError, ValidationError
from headwater.log import Log
from headwater.models import Model
from headwater.models.updates import UpdateMaker
from headwater.registry import OffsetRange, TopicSlice, TrainingSlice
from headwater.registry.updates import (
    MODEL_UPDATES_TOPIC,
    ModelUpdate,
    encode,
    ensure_updates_topic,
)
from headwater.time import Clock, SystemClock

__all__ = ["DEFAULT_EVERY_MS", "DEFAULT_EVERY_ROWS", "UpdatePublisher"]

#: By default an update goes out every 1,000 examples ...
DEFAULT_EVERY_ROWS: Final = 1_000
#: ... or every 50 ms while an example is left unsent.
DEFAULT_EVERY_MS: Final = 50.0


class UpdatePublisher:
    """Appends updates of model ``name`` to ``topic`` (see the module docstring);
    ``on_problem`` is told when the topic refuses one (over its size limit)."""

    def __init__(self, log: Log, name: str, *, every_rows: int = DEFAULT_EVERY_ROWS,
                 every_ms: float = DEFAULT_EVERY_MS, topic: str = MODEL_UPDATES_TOPIC,
                 clock: Clock | None = None,
                 on_problem: Callable[[str], None] | None = None) -> None:
        if isinstance(every_rows, bool) or not isinstance(every_rows, int) or every_rows < 1:
            raise ValidationError("every_rows", f"expected an int >= 1, got {every_rows!r}")
        if not every_ms > 0:
            raise ValidationError("every_ms", f"expected a number > 0, got {every_ms!r}")
        self.log = log
        self.name = name
        self.every_rows = every_rows
        self.every_us = int(every_ms * 1000)
        self.topic = topic
        self.clock: Clock = clock or SystemClock()
        ensure_updates_topic(log, topic)
        self.base: int | None = None
        self.published = 0
        self.last: ModelUpdate | None = None
        self._maker: UpdateMaker | None = None
        self._examples_topic = ""
        self._start: dict[int, int] = {}
        self._examples = 0  # learnt since the base
        self._unsent = 0  # learnt since the last update
        self._sent_at = 0
        self._stalled = False
        #: Updates the topic refused (too large): none is sent until the next checkpoint.
        self.refused = 0
        self.on_problem = on_problem

    def rebase(self, model: Model, base: int | None, examples_topic: str,
               start: Mapping[int, int]) -> None:
        """``model`` is now version ``base`` (``None``: no version yet, nothing to send),
        whose slice ended at ``start`` in ``examples_topic``."""
        if self._maker is None or self._maker.model is not model:
            self._maker = UpdateMaker(model)
        self._maker.checkpoint()
        self.base = base
        self._examples_topic = examples_topic
        self._start = dict(start)
        self._examples = self._unsent = 0
        self._sent_at = self.clock.now_us()
        self._stalled = False

    def learnt(self, rows: int, position: Mapping[int, int]) -> ModelUpdate | None:
        """The live model learnt ``rows`` more examples, up to ``position``: append an
        update if one is due (returned), else ``None``."""
        self._examples += rows
        self._unsent += rows
        return self.flush(position, due_only=True)

    def flush(self, position: Mapping[int, int], *, due_only: bool = False,
              force: bool = False) -> ModelUpdate | None:
        """Append an update of what is unsent (if due, with ``due_only``; even when
        nothing is, with ``force``: after a revert to the base, servers then serve it)."""
        if self._maker is None or self.base is None or self._stalled:
            return None
        if not self._unsent and not force:
            return None
        now = self.clock.now_us()
        if (due_only and not force and self._unsent < self.every_rows
                and now - self._sent_at < self.every_us):
            return None
        ranges = tuple(OffsetRange(partition=p, start=self._start.get(p, 0), end=end)
                       for p, end in sorted(position.items()) if end > self._start.get(p, 0))
        training = TrainingSlice(topics=(TopicSlice(topic=self._examples_topic,
                                                    ranges=ranges),),
                                 examples=self._examples)
        update = ModelUpdate(self.name, self.base, self._maker.update(), training, now)
        try:
            result = self.log.append(self.topic, encode([update]))
        except PayloadTooLargeError as exc:
            return self._refused(str(exc))
        if result.rejected:
            return self._refused(result.rejected[0].reason)
        self.last = ModelUpdate(update.model, update.base, update.update, training, now,
                                int(result.offsets[0]))
        self.published += 1
        self._unsent = 0
        self._sent_at = now
        return self.last

    def _refused(self, reason: str) -> ModelUpdate | None:
        """The topic refused an update: say so, send none until the next checkpoint (the
        servers keep serving the last update, which their predictions name)."""
        self.refused += 1
        self._stalled = True
        if self.on_problem is not None:
            self.on_problem(f"the update of {self.name} v{self.base} was refused by topic "
                            f"{self.topic!r} ({reason}): no update is sent until the next "
                            "checkpoint; checkpoint more often (--every) or raise "
                            "HEADWATER_MAX_EVENT_BYTES")
        return None
