"""``headwater simulate`` as a user runs it: a separate process over CSV files shaped as
users have them (labels known hours after their events), its result read back by
``headwater report`` and ``headwater models lineage``."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from tests.processes import Backends

PROJECT = textwrap.dedent(
    """
    from headwater.features import Entity, Feature, FeatureSet, Lifetime, StreamSource
    card = Entity("card", key="card")
    payments = StreamSource.of("payments")
    fs = FeatureSet("fraud", (
        Feature.of("payments_seen", card, payments, "count", window=Lifetime()),
    ))
    """
)
START = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
DELAY = timedelta(hours=2)


def _files(root: Path, n: int) -> tuple[Path, Path, list[float]]:
    rng = np.random.default_rng(7)
    events = ["payment_id,card,amount,paid_at"]
    labels = ["payment_id,chargeback,known_at"]
    truth = []
    for i in range(n):
        at = START + timedelta(seconds=30 * i)
        amount = float(rng.uniform(1, 100))
        fraud = 1.0 if amount > 70 else 0.0
        truth.append(fraud)
        events.append(f"p{i},c{i % 40},{amount:.2f},{at.isoformat().replace('+00:00', 'Z')}")
        # a label becomes known two hours after its payment; the file is not in time order
        labels.append(f"p{i},{int(fraud)},{(at + DELAY).isoformat()}")
    (root / "payments.csv").write_text("\n".join(events) + "\n")
    (root / "chargebacks.csv").write_text("\n".join([labels[0], *reversed(labels[1:])]) + "\n")
    return root / "payments.csv", root / "chargebacks.csv", truth


def _headwater(home: Path, *args: str, backends: Backends | None = None
               ) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
    env.update(HEADWATER_HOME=str(home), HEADWATER_FSYNC="never")
    if backends is not None:
        env.update(backends.environment(home))
    return subprocess.run([sys.executable, "-m", "headwater", *args], env=env, cwd=home.parent,
                          capture_output=True, text=True, timeout=600, check=False)


def test_simulate_replays_delayed_labels_through_the_loop(tmp_path: Path,
                                                         backends: Backends) -> None:
    events, labels, truth = _files(tmp_path, 1200)
    (tmp_path / "features.py").write_text(PROJECT)
    home = tmp_path / "home"
    done = _headwater(home, "simulate", "--model", "fraud", "--project",
                      str(tmp_path / "features.py"), "--events", str(events), "--outcomes",
                      str(labels), "--topic", "payments", "--key", "card", "--event-time",
                      "paid_at", "--request-id", "payment_id", "--label", "chargeback",
                      "--request", "amount", "--window", "3h", "--every", "30m",
                      "--gate-min-examples", "50", "--learn-every", "5m", "--json",
                      backends=backends)
    assert done.returncode == 0, done.stderr
    assert "ETA" in done.stderr
    assert "100.0%" in done.stderr
    card = json.loads(done.stdout)
    assert card["events"] == card["predictions"] == 1200
    assert card["outcomes"] == 1200
    assert card["late_outcomes"] == 0
    # every payment was labelled inside the window, and joined once
    assert card["examples"] == 1200
    arms = {a["arm"]: a for a in card["arms"]}
    assert list(arms) == ["champion"]
    assert arms["champion"]["examples"] == 1200
    # it learnt the amount: scored on the predictions it served as it went
    assert arms["champion"]["auc"] > 0.8  # the first 2 h answered 0.5: nothing learnt yet
    assert card["promoted"] >= 3
    assert card["promoted"] + card["rejected"] >= card["promoted"]
    # no label is known before two hours: the served model's newest label was known at
    # least as long ago as its publication; the first predictions had none learnt
    assert card["never_learnt"] >= 240  # 2 h of payments every 30 s, before any label
    assert 0 < card["label_age_median_s"] <= card["label_age_p90_s"]
    assert card["label_age_p90_s"] < 2 * 3600
    assert set(card["cpu_s"]) == {"features", "serving", "labels", "training"}
    assert sum(truth) > 0
    # the log and the model store are a live run's
    lineage = _headwater(home, "models", "lineage", "fraud", backends=backends)
    assert lineage.returncode == 0, lineage.stderr
    assert "v2" in lineage.stdout or "2" in lineage.stdout
    report = _headwater(home, "report", "--model", "fraud", backends=backends)
    assert report.returncode == 0, report.stderr
    assert "champion" in report.stdout
    again = _headwater(home, "simulate", "--model", "fraud", "--project",
                       str(tmp_path / "features.py"), "--events", str(events), "--outcomes",
                       str(labels), "--topic", "payments", "--key", "card", "--event-time",
                       "paid_at", "--request-id", "payment_id", "--label", "chargeback",
                       backends=backends)
    assert again.returncode == 2
    assert "starts from nothing" in again.stderr


def test_outcomes_naming_no_event_are_refused(tmp_path: Path) -> None:
    events, labels, _ = _files(tmp_path, 50)
    labels.write_text(labels.read_text() + "p999,1,2026-03-02T12:00:00Z\n")
    (tmp_path / "features.py").write_text(PROJECT)
    done = _headwater(tmp_path / "home", "simulate", "--model", "fraud", "--project",
                      str(tmp_path / "features.py"), "--events", str(events), "--outcomes",
                      str(labels), "--topic", "payments", "--key", "card", "--event-time",
                      "paid_at", "--request-id", "payment_id", "--label", "chargeback")
    assert done.returncode == 2
    assert "p999" in done.stderr


def test_run_refuses_bad_options_before_starting_anything(tmp_path: Path) -> None:
    home = tmp_path / "home"
    done = _headwater(home, "run", "--model", "fraud", "--window", "soon")
    assert done.returncode == 2
    assert "--window" in done.stderr
    assert not (home / "run").exists()
    done = _headwater(home, "run", "--model", "fraud", "--every", "1h",
                      "--model-class", "nowhere:Model")
    assert done.returncode == 2
    assert "--model-class" in done.stderr
