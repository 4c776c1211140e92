from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import given
from hypothesis import strategies as st

from headwater.errors import TimestampError
from headwater.time import (
    MAX_MICROS,
    MIN_MICROS,
    Clock,
    ManualClock,
    SystemClock,
    describe_instant,
    format_duration,
    format_micros,
    from_micros,
    parse_duration,
    parse_time,
    parse_timestamp,
    to_micros,
)


@given(st.integers(MIN_MICROS, MAX_MICROS - 1))
def test_micros_round_trip_through_datetime_and_text(us: int) -> None:
    assert to_micros(from_micros(us)) == us
    assert parse_timestamp(format_micros(us)) == us


def test_offsets_are_honoured() -> None:
    plus_two = datetime(2024, 1, 1, 2, 0, tzinfo=timezone(timedelta(hours=2)))
    assert to_micros(plus_two) == to_micros(datetime(2024, 1, 1, tzinfo=UTC))
    assert parse_timestamp("2024-01-01T02:00:00+02:00") == parse_timestamp("2024-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        (datetime(2024, 1, 1), "naive"),  # noqa: DTZ001
        ("2024-01-01T00:00:00", "naive"),
        ("yesterday", "ISO 8601"),
        (True, "bool"),
        (1.5, "float"),
        (MAX_MICROS, "range"),
        (MIN_MICROS - 1, "range"),
    ],
)
def test_bad_timestamps_name_field_and_reason(value: object, reason: str) -> None:
    with pytest.raises(TimestampError, match=reason) as info:
        parse_timestamp(value, field="when")
    assert info.value.field == "when"


@pytest.mark.parametrize(
    ("text", "us"),
    [("500ms", 500_000), ("30s", 30_000_000), ("2h", 7_200_000_000), ("1d12h", 129_600_000_000),
     ("250us", 250), (42, 42)],
)
def test_durations(text: str | int, us: int) -> None:
    assert parse_duration(text) == us


@pytest.mark.parametrize("text", ["", "10", "5 parsecs", "h", -1])
def test_bad_durations(text: str | int) -> None:
    with pytest.raises(TimestampError, match="retention") as info:
        parse_duration(text, field="retention")
    assert info.value.field == "retention"


@given(st.integers(0, 1 << 62))
def test_formatted_durations_read_back(us: int) -> None:
    assert parse_duration(format_duration(us)) == us
    assert parse_duration(format_duration(-us).removeprefix("-")) == us
    short = format_duration(us, exact=False)
    assert parse_duration(short) <= us  # cut off, never rounded up
    assert format_duration(us).startswith(short)
    if us:  # what is cut off is less than one of the smallest unit written
        assert us - parse_duration(short) < parse_duration("1" + re.findall("[a-z]+", short)[-1])


def test_messages_name_instants_in_human_units() -> None:
    assert describe_instant(0) == "1970-01-01T00:00:00.000000+00:00"
    nanoseconds = to_micros(datetime(2024, 1, 1, tzinfo=UTC)) * 1_000
    assert describe_instant(nanoseconds).endswith("(about year 55969: nanoseconds?)")
    with pytest.raises(TimestampError, match=r"2300-01-01T00:00:00\.000000\+00:00 is outside"):
        parse_timestamp("2300-01-01T00:00:00Z")


@pytest.mark.parametrize(
    ("text", "offset"),
    [("now", 0), ("NOW", 0), ("now-7d", -604_800_000_000), ("now - 1h30m", -5_400_000_000),
     ("now+30s", 30_000_000)],
)
def test_times_relative_to_now(text: str, offset: int) -> None:
    clock = ManualClock(parse_timestamp("2024-05-08T00:00:00Z"))
    assert parse_time(text, clock=clock) == clock.now_us() + offset
    assert parse_time("2024-05-01T00:00:00Z", clock=clock) == parse_timestamp(
        "2024-05-01T00:00:00Z")


@pytest.mark.parametrize(("text", "reason"), [("now*2", "now-7d"), ("now-", "duration"),
                                              ("now-7 days", "cannot read duration"),
                                              ("now-1000000d", "range"), ("later", "ISO 8601")])
def test_bad_relative_times(text: str, reason: str) -> None:
    with pytest.raises(TimestampError, match=reason) as info:
        parse_time(text, clock=ManualClock(0), field="--from")
    assert info.value.field == "--from"


def test_clocks() -> None:
    clock = ManualClock(100)
    assert isinstance(clock, Clock)
    assert clock.advance(50) == 150
    clock.set(10)
    assert clock.now_us() == 10
    system = SystemClock()
    assert isinstance(system, Clock)
    assert abs(system.now_us() - to_micros(datetime.now(UTC))) < 60_000_000
