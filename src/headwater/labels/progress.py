"""What the label joiner does, as it runs: running counts, a status line, and warnings
the moment the join rule does not fit the outcomes.

Two mismatches between the rule and the data would make the training examples wrong
without an error, so :class:`JoinProgress` says them as soon as they show, with the
count and the option that changes it:

- **explicit labels later than the window.** A label that arrives after its
  prediction's window has closed cannot join: it goes to the late topic, and the
  prediction has made no example — or, with a timeout label, an example with the
  timeout label instead of the real one. Counted as ``late_labels``.
- **clicks without a timeout label.** When the outcomes are events without a label
  (clicks) and no timeout label is set, a prediction nobody clicked makes no example:
  the examples hold positives only. Counted as ``silent``.

Warnings are rate-limited to one of each kind per ``every_us`` (the first one is said
at once), each with the count since the previous one and the running total. The status
line (``every_us`` apart, when something changed) says what was read and what became of
it: examples joined (to an outcome or an explicit label) and timed out, outcomes sent
late, predictions expired without an example, requests still open, and — when there
are any — predictions logged again under a request id already taken, which are set
aside (the first prediction under an id is the one labelled).

>>> from headwater.labels.join import JoinRule
>>> said: list[str] = []
>>> progress = JoinProgress(JoinRule(window=600_000_000), late_topic="outcomes.late",
...                         on_warning=said.append, on_status=said.append, every_us=10)
>>> progress.update(JoinStep(4, 3, 1, 2, 0, late_labels=2), open_requests=1, now_us=0)
>>> said[0].split(",")[0]
"2 labels arrived after their prediction's 10m window had closed"
>>> said[1]  # doctest: +ELLIPSIS
'labels: read 4 predictions, 3 outcomes; 1 example (1 joined, 0 timed out); 2 late ...'
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Final, NamedTuple

from headwater.labels.join import JoinRule
from headwater.time import format_duration

__all__ = ["JoinCounts", "JoinProgress", "JoinStep"]

_NEVER: Final = -(1 << 62)


class JoinStep(NamedTuple):
    """What one step of the joiner read and wrote.

    ``timeouts`` of the ``examples`` were labelled by the timeout; ``late_labels`` of
    the ``late`` outcomes are explicit labels that came after their prediction's window
    (or named a request closed so long ago the joiner no longer holds it); ``unlabelled``
    of the ``outcomes`` read carry no label (clicks).
    """

    predictions: int
    outcomes: int
    examples: int
    late: int
    expired: int
    timeouts: int = 0
    late_labels: int = 0
    unlabelled: int = 0
    repeated: int = 0


class JoinCounts(NamedTuple):
    """Running totals of :class:`JoinStep` fields."""

    predictions: int = 0
    outcomes: int = 0
    examples: int = 0
    late: int = 0
    expired: int = 0
    timeouts: int = 0
    late_labels: int = 0
    unlabelled: int = 0
    repeated: int = 0

    def plus(self, step: JoinStep) -> JoinCounts:
        return JoinCounts(*(a + b for a, b in zip(self, step, strict=True)))


def _plural(n: int, word: str) -> str:
    return f"{n:,} {word}" if n == 1 else f"{n:,} {word}s"


class JoinProgress:
    """Counts the joiner's steps; reports the status and the warnings (see the module)."""

    def __init__(self, rule: JoinRule, *, late_topic: str,
                 on_warning: Callable[[str], None] | None = None,
                 on_status: Callable[[str], None] | None = None,
                 every_us: int = 10_000_000) -> None:
        self.rule = rule
        self.late_topic = late_topic
        self.on_warning = on_warning
        self.on_status = on_status
        self.every_us = every_us
        self.counts = JoinCounts()
        self.open_requests = 0
        self._said = JoinCounts()  # the counts at the last status line
        self._warned = {"late_labels": JoinCounts(), "silent": JoinCounts()}
        self._warned_at = {"late_labels": _NEVER, "silent": _NEVER}
        self._status_at = _NEVER

    def update(self, step: JoinStep, *, open_requests: int, now_us: int) -> None:
        """Count ``step``; warn and report the status when they are due."""
        self.counts = self.counts.plus(step)
        self.open_requests = open_requests
        self._warn(now_us)
        if self.on_status is not None and now_us - self._status_at >= self.every_us \
                and self.counts != self._said:
            self.on_status(self.status())
            self._said, self._status_at = self.counts, now_us

    def finish(self, now_us: int) -> None:
        """When the joiner stops: the warnings held back by the rate limit, and the
        status unless the last line said it already."""
        self._warn(now_us, force=True)
        if self.on_status is not None and (self.counts != self._said
                                           or self._status_at == _NEVER):
            self.on_status(self.status())
            self._said, self._status_at = self.counts, now_us

    @property
    def silent(self) -> int:
        """Predictions closed without an example while the outcomes are unlabelled events
        (clicks) and there is no timeout label: the negatives that are missing."""
        if self.rule.timeout_label is not None or not self.counts.unlabelled:
            return 0
        return self.counts.expired

    def status(self) -> str:
        """One line: what was read and what became of it, since the start."""
        c = self.counts
        late = f"{c.late:,} late"
        if c.late_labels:
            late += f" ({c.late_labels:,} labels after the window)"
        repeated = (f"; {c.repeated:,} repeated request id{'s' * (c.repeated != 1)} set "
                    "aside (the first prediction under an id is labelled)"
                    if c.repeated else "")
        return (f"labels: read {_plural(c.predictions, 'prediction')}, "
                f"{_plural(c.outcomes, 'outcome')}; {_plural(c.examples, 'example')} "
                f"({c.examples - c.timeouts:,} joined, {c.timeouts:,} timed out); "
                f"{late}; {c.expired:,} expired; {self.open_requests:,} open{repeated}")

    def _warn(self, now_us: int, *, force: bool = False) -> None:
        if self.on_warning is None:
            return
        window = format_duration(self.rule.window)
        c = self.counts
        since = self._warned["late_labels"]
        new = c.late_labels - since.late_labels
        if new and (force or now_us - self._warned_at["late_labels"] >= self.every_us):
            inverted = ("" if self.rule.timeout_label is None else
                        f"; their predictions became examples labelled "
                        f"{self.rule.timeout_label:g} by the timeout label instead")
            self.on_warning(
                f"{_plural(new, 'label')} arrived after their prediction's {window} window "
                "had closed, or for a request the joiner does not know "
                f"({c.late_labels:,} so far): they are in {self.late_topic}, not in the "
                f"training examples{inverted}; raise --window to the delay of your labels")
            self._warned["late_labels"], self._warned_at["late_labels"] = c, now_us
        since = self._warned["silent"]
        silent = self.silent
        new = silent - (since.expired if since.unlabelled else 0)
        if new > 0 and (force or now_us - self._warned_at["silent"] >= self.every_us):
            self.on_warning(
                f"{_plural(new, 'prediction')} had no outcome within the {window} window and "
                f"made no example ({silent:,} so far) while the outcomes are events without "
                "a label (clicks): the examples hold positives only. If silence means a "
                "negative, pass --timeout-label 0")
            self._warned["silent"], self._warned_at["silent"] = c, now_us
