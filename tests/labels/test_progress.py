"""The joiner's progress: a status line when something changed, warnings at once and then
at most one per period, none held back when the joiner stops."""

from __future__ import annotations

from headwater.labels.join import JoinRule
from headwater.labels.progress import JoinProgress, JoinStep

MINUTE = 60_000_000


def progress(timeout_label: float | None = None) -> tuple[JoinProgress, list[str], list[str]]:
    warnings: list[str] = []
    statuses: list[str] = []
    return (JoinProgress(JoinRule(window=10 * MINUTE, timeout_label=timeout_label),
                         late_topic="outcomes.late", on_warning=warnings.append,
                         on_status=statuses.append, every_us=MINUTE), warnings, statuses)


def test_late_labels_are_said_at_once_then_once_a_period_with_the_counts() -> None:
    p, warnings, statuses = progress()
    p.update(JoinStep(3, 3, 0, 3, 0, late_labels=3), open_requests=0, now_us=0)
    assert len(warnings) == 1
    assert warnings[0].startswith("3 labels arrived after their prediction's 10m window")
    assert "(3 so far)" in warnings[0]
    p.update(JoinStep(0, 2, 0, 2, 0, late_labels=2), open_requests=0, now_us=MINUTE // 2)
    assert len(warnings) == 1  # held back until a period has passed
    p.update(JoinStep(0, 0, 0, 0, 0), open_requests=0, now_us=MINUTE)
    assert len(warnings) == 2
    assert warnings[1].startswith("2 labels arrived")
    assert "(5 so far)" in warnings[1]
    p.update(JoinStep(0, 1, 0, 1, 0, late_labels=1), open_requests=0, now_us=MINUTE + 1)
    p.finish(MINUTE + 2)  # stopping says what was held back
    assert warnings[2].startswith("1 label arrived")
    assert "(6 so far)" in warnings[2]
    assert statuses == [
        "labels: read 3 predictions, 3 outcomes; 0 examples (0 joined, 0 timed out); 3 late "
        "(3 labels after the window); 0 expired; 0 open",
        "labels: read 3 predictions, 5 outcomes; 0 examples (0 joined, 0 timed out); 5 late "
        "(5 labels after the window); 0 expired; 0 open",
        "labels: read 3 predictions, 6 outcomes; 0 examples (0 joined, 0 timed out); 6 late "
        "(6 labels after the window); 0 expired; 0 open",
    ]


def test_late_outcomes_that_are_not_labels_are_no_warning() -> None:
    p, warnings, _ = progress(timeout_label=0.0)
    p.update(JoinStep(5, 2, 5, 2, 0, timeouts=5, unlabelled=2), open_requests=0, now_us=0)
    p.finish(1)
    assert warnings == []


def test_clicks_without_a_timeout_label_are_said_once_there_is_silence() -> None:
    p, warnings, _ = progress()
    p.update(JoinStep(10, 3, 3, 0, 0, unlabelled=3), open_requests=7, now_us=0)
    assert warnings == []  # nothing expired yet
    p.update(JoinStep(0, 0, 0, 0, 7), open_requests=0, now_us=1)
    assert len(warnings) == 1
    assert warnings[0].startswith("7 predictions had no outcome within the 10m window")
    assert "pass --timeout-label 0" in warnings[0]
    p.update(JoinStep(2, 0, 0, 0, 2), open_requests=0, now_us=2 * MINUTE)
    assert warnings[1].startswith("2 predictions had no outcome")
    assert "(9 so far)" in warnings[1]


def test_a_timeout_label_that_inverts_late_labels_is_named() -> None:
    p, warnings, _ = progress(timeout_label=0.0)
    p.update(JoinStep(1, 1, 1, 1, 0, timeouts=1, late_labels=1), open_requests=0, now_us=0)
    assert "became examples labelled 0 by the timeout label instead" in warnings[0]


def test_the_status_line_names_repeated_request_ids_only_when_there_are_some() -> None:
    p, _, statuses = progress()
    p.update(JoinStep(2, 1, 1, 0, 0), open_requests=1, now_us=0)
    p.update(JoinStep(2, 0, 0, 0, 0, repeated=2), open_requests=1, now_us=MINUTE)
    assert statuses == [
        "labels: read 2 predictions, 1 outcome; 1 example (1 joined, 0 timed out); 0 late; "
        "0 expired; 1 open",
        "labels: read 4 predictions, 1 outcome; 1 example (1 joined, 0 timed out); 0 late; "
        "0 expired; 1 open; 2 repeated request ids set aside (the first prediction under "
        "an id is labelled)",
    ]
