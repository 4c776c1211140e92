"""``headwater produce --known-at``: a backfill says when each row became known, so "as
known at" queries over it answer what was known then (separate processes, a CSV)."""

from __future__ import annotations

import textwrap
from pathlib import Path

from tests.processes import Backends, headwater

PROJECT = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    user = Entity("user", key="user")
    spend = Feature.of("spend", user, StreamSource.of("payments"), "sum", column="amount",
                       window=Lifetime())
    checkout = FeatureSet("checkout", (spend,))
    """
)
# ada's second payment happened at 02:00 but was only reported at 13:00 (the file is in
# the order of the data, not of the reports)
CSV = textwrap.dedent(
    """\
    user,amount,ts,reported_at
    ada,10,2024-05-01T01:00:00Z,2024-05-01T01:05:00Z
    ada,30,2024-05-01T02:00:00Z,2024-05-01T13:00:00Z
    bob,5,2024-05-01T14:00:00Z,2024-05-01T14:00:00Z
    """
)


def _spend(home: Path, env: dict[str, str], at: str, mode: str) -> str:
    got = headwater(home, "features", "get", "ada", "--set", "checkout", "--at", at,
                    "--mode", mode, env=env)
    assert got.returncode == 0, got.stderr
    row = next(line for line in got.stdout.splitlines() if "spend" in line)
    return row.split("│")[2].strip()


def _load(tmp_path: Path, backends: Backends, *known_at: str) -> tuple[Path, dict[str, str]]:
    home = tmp_path / "home"
    (tmp_path / "features.py").write_text(PROJECT)
    text = CSV if "reported_at" in known_at else "".join(  # the topic's columns alone
        line.rsplit(",", 1)[0] + "\n" for line in CSV.splitlines())
    (tmp_path / "payments.csv").write_text(text)
    env = {**backends.environment(home), "HEADWATER_PROJECT": str(tmp_path / "features.py")}
    created = headwater(home, "topics", "create", "payments", "--schema",
                        "user:string,amount:float64,ts:timestamp", "--key", "user",
                        "--event-time", "ts", env=env)
    assert created.returncode == 0, created.stderr
    produced = headwater(home, "produce", "payments", str(tmp_path / "payments.csv"),
                         *known_at, env=env)
    assert produced.returncode == 0, produced.stderr
    ran = headwater(home, "features", "run", "--idle-timeout", "0", env=env)
    assert ran.returncode == 0, ran.stderr
    return home, env


def test_rows_known_when_a_column_says(tmp_path: Path, backends: Backends) -> None:
    home, env = _load(tmp_path, backends, "--known-at", "reported_at")
    assert _spend(home, env, "2024-05-01T12:00:00Z", "known_at") == "10.0"
    assert _spend(home, env, "2024-05-01T14:00:00Z", "known_at") == "40.0"
    # as of the data's own time, the late report counts where it happened
    assert _spend(home, env, "2024-05-01T12:00:00Z", "event_time") == "40.0"
    assert _spend(home, env, "2024-05-01T01:30:00Z", "known_at") == "10.0"


def test_rows_known_when_they_happened(tmp_path: Path, backends: Backends) -> None:
    home, env = _load(tmp_path, backends, "--known-at", "event-time")
    assert _spend(home, env, "2024-05-01T12:00:00Z", "known_at") == "40.0"
    assert _spend(home, env, "2024-05-01T01:30:00Z", "known_at") == "10.0"


def test_without_it_backfilled_rows_were_known_only_now(tmp_path: Path,
                                                        backends: Backends) -> None:
    home, env = _load(tmp_path, backends)
    assert _spend(home, env, "2024-05-01T12:00:00Z", "known_at") in ("0.0", "null")


def test_known_times_older_than_the_topics_last_append_are_refused(
        tmp_path: Path, backends: Backends) -> None:
    home, env = _load(tmp_path, backends)  # appended now
    again = headwater(home, "produce", "payments", str(tmp_path / "payments.csv"),
                      "--known-at", "event-time", env=env)
    assert again.returncode == 2
    assert "--known-at" in again.stderr
    assert "only grow" in again.stderr
