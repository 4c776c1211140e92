"""Learning each label the moment it arrives: the one-pass route and the general one agree
with an event-by-event replay of predictions and labels."""

from __future__ import annotations

import numpy as np
import numpy.typing as npt
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.evaluation.arms import on_arrival
from headwater.evaluation.examples import Examples
from headwater.models import LogisticRegression


def replayed(examples: Examples, block: int) -> npt.NDArray[np.float64]:
    """The oracle: every prediction and label as an event, one at a time, in the order
    :func:`on_arrival` promises (a delayed label known at ``t`` before the predictions at
    ``t``; a label known when predicted just after its own prediction)."""
    model = LogisticRegression(block=block)
    events: list[tuple[int, int, int]] = []  # (time on a doubled clock, kind, row)
    for i, (p, k) in enumerate(zip(examples.prediction_time.tolist(),
                                   examples.label_time.tolist(), strict=True)):
        events.append((2 * p, 0, i))
        events.append((2 * k - 1 if k > p else 2 * k, 1, i))
    # at one instant predictions come before the labels known at it without delay; rows in
    # prediction order (the stable order of prediction time)
    rank = np.empty(len(examples), np.int64)
    rank[np.argsort(examples.prediction_time, kind="stable")] = np.arange(len(examples))
    events.sort(key=lambda e: (e[0], e[1], int(rank[e[2]])))
    scores = np.empty(len(examples))
    for _, kind, i in events:
        row = {name: column[i:i + 1] for name, column in examples.features.items()}
        if kind == 0:
            scores[i] = model.predict(row)[0]
        else:
            model.learn(row, examples.y[i:i + 1])
    return scores


@st.composite
def streams(draw: st.DrawFn, *, in_turn: bool) -> Examples:
    n = draw(st.integers(1, 60))
    gaps = draw(st.lists(st.integers(1 if in_turn else 0, 5), min_size=n, max_size=n))
    predicted = np.cumsum(gaps).astype(np.int64)
    if in_turn:  # each label known between its prediction and the next one
        nxt = np.r_[predicted[1:], predicted[-1] + 3]
        known = np.array([draw(st.integers(int(p), int(q))) for p, q in
                          zip(predicted, nxt, strict=True)], np.int64)
    else:
        delays = draw(st.lists(st.integers(0, 12), min_size=n, max_size=n))
        known = predicted + np.asarray(delays, np.int64)
    x = np.asarray(draw(st.lists(st.floats(-3, 3), min_size=n, max_size=n)))
    y = np.asarray(draw(st.lists(st.sampled_from([0.0, 1.0]), min_size=n, max_size=n)))
    order = np.asarray(draw(st.permutations(range(n))))  # rows in any order
    return Examples({"x": x[order], "z": (x * x)[order]}, y[order],
                    prediction_time=predicted[order], label_time=known[order])


@settings(max_examples=60, deadline=None)
@given(streams(in_turn=True), st.sampled_from([1, 4, 128]))
def test_labels_learnt_before_the_next_prediction_take_the_one_pass_route(
        examples: Examples, block: int) -> None:
    scores = on_arrival(LogisticRegression(block=block), examples)
    np.testing.assert_allclose(scores, replayed(examples, block), rtol=0, atol=1e-9)


@settings(max_examples=60, deadline=None)
@given(streams(in_turn=False), st.sampled_from([1, 4, 128]))
def test_delayed_and_tied_labels_are_learnt_as_they_arrive(examples: Examples,
                                                           block: int) -> None:
    scores = on_arrival(LogisticRegression(block=block), examples)
    np.testing.assert_allclose(scores, replayed(examples, block), rtol=0, atol=1e-9)


def test_a_label_known_with_the_next_request_is_learnt_before_it() -> None:
    x = np.array([1.0, 1.0])
    late = Examples({"x": x}, [1.0, 1.0], prediction_time=[0, 10], label_time=[10, 20])
    never = Examples({"x": x}, [1.0, 1.0], prediction_time=[0, 10], label_time=[11, 20])
    learnt, not_yet = on_arrival(LogisticRegression(), late), on_arrival(LogisticRegression(),
                                                                         never)
    assert learnt[0] == not_yet[0] == 0.5
    assert learnt[1] > 0.5 == not_yet[1]
