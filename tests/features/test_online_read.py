"""Reading a feature set online: the entity's features decoded together agree with the
feature-by-feature rules on every entry, time and definition."""

from __future__ import annotations

from typing import Any

import msgspec
import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from headwater.features import Entity, Feature, FeatureSet, Lifetime, Sliding, StreamSource
from headwater.features.online import FeatureReader, value_at
from headwater.features.state import ENTRY_HEADER, entries
from headwater.features.windows import Window
from headwater.store.online.memory import MemoryOnlineStore

USER = Entity("user", key="user")
SOURCE = StreamSource.of("events")
HOP = 300_000_000  # 5 min
WINDOWS: list[Window] = [Sliding.of("1h", hop="5m"), Sliding.of("15m", hop="5m"),
                         Sliding.of("2h", hop="1h"), Lifetime()]
NOW = 1_704_067_200_000_000


@st.composite
def feature_sets(draw: st.DrawFn) -> list[Feature]:
    count = draw(st.integers(2, 8))
    out = []
    for j in range(count):
        kind = draw(st.sampled_from(["sum", "count", "mean", "max", "last"]))
        out.append(Feature.of(
            f"f{j}", USER, SOURCE, kind, column=None if kind == "count" else "x",
            window=draw(st.sampled_from(WINDOWS)),
            ttl=draw(st.one_of(st.none(), st.integers(1, 4 * 3_600_000_000))),
            default=draw(st.sampled_from([msgspec.UNSET, None, -1.0]))))
    return out


def entry(data: st.DataObject, f: Feature) -> bytes | None:
    """An entry as the engine writes it, usually near the read time; or none, or text."""
    draw = data.draw
    shape = draw(st.sampled_from(["numbers", "numbers", "numbers", "none", "text"]))
    if shape == "none":
        return None
    last = NOW - draw(st.integers(-HOP, 5 * 3_600_000_000))
    tile = last // f.window.hop_us
    if shape == "text" and f.aggregation == "last":
        body = ENTRY_HEADER.pack(last, tile) + msgspec.json.encode(["a"] * f.window.tiles)
        return body + b" " * ((1 - len(body)) % 8)
    values = draw(st.lists(st.one_of(st.floats(-1e6, 1e6), st.just(float("nan"))),
                           min_size=f.window.tiles, max_size=f.window.tiles))
    return entries(np.array([last]), np.array([tile]), np.array([values]))[0]


@settings(max_examples=300, deadline=None)
@given(feature_sets(), st.data(), st.integers(-2 * HOP, 3 * 3_600_000_000))
def test_the_features_read_together_agree_with_each_one_read_alone(
    features: list[Feature], data: st.DataObject, later: int
) -> None:
    found = {f.name: entry(data, f) for f in features}
    stored = {name: e for name, e in found.items() if e is not None}
    online = MemoryOnlineStore()
    if stored:
        online.write("user", [("ada", stored)])
    now = NOW + later
    row = FeatureReader(online, FeatureSet("set", tuple(features))).read_row({"user": "ada"}, now)
    alone: dict[str, Any] = {f.name: value_at(f, found[f.name], now) for f in features}
    assert row.values == alone
    assert list(row.values) == [f.name for f in features]


def test_a_full_row_of_numbers_is_read_together() -> None:
    features = [Feature.of(f"f{j}", USER, SOURCE, "sum", column="x", window=WINDOWS[j % 4])
                for j in range(6)]
    last = NOW - 1
    online = MemoryOnlineStore()
    online.write("user", [("ada", {
        f.name: entries(np.array([last]), np.array([last // f.window.hop_us]),
                        np.array([[float(j)] * f.window.tiles]))[0]
        for j, f in enumerate(features)})])
    reader = FeatureReader(online, FeatureSet("set", tuple(features)))
    together = reader._together["user"]
    assert together is not None
    assert together.values(online.read("user", "ada"), NOW) == (0.0, 1.0, 2.0, 3.0, 4.0, 5.0)
    assert reader.read({"user": "ada"}, NOW) == {f"f{j}": float(j) for j in range(6)}
