"""The components' Prometheus metrics on ``--metrics-port``, scraped from the running
processes of the loop, their status lines, and the Grafana dashboard shipped for them."""

from __future__ import annotations

import json
import re
import signal
import subprocess
import sys
import urllib.request
from datetime import UTC, datetime
from importlib import resources

import pytest

from headwater.console.scrape import Sample, parse, total
from tests.console.loop import USERS, Console, Loop, clicks_csv
from tests.processes import environment, free_port, wait_for

pytestmark = pytest.mark.slow


class Component:
    """``headwater ARGS… --metrics-port PORT`` running until :meth:`stop`."""

    def __init__(self, loop: Loop, *args: str) -> None:
        self.port = free_port()
        self.process = subprocess.Popen(
            [sys.executable, "-m", "headwater", *args, "--metrics-port", str(self.port)],
            env=environment(loop.home, loop.env), stdout=subprocess.PIPE,
            stderr=subprocess.PIPE, text=True)
        self.samples: list[Sample] = []

    def scrape(self) -> list[Sample]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}/metrics",
                                        timeout=10) as answer:
                self.samples = parse(answer.read().decode())
        except OSError:
            assert self.process.poll() is None, self.process.communicate()
            return []
        return self.samples

    def stop(self) -> tuple[str, str]:
        self.process.send_signal(signal.SIGINT)
        out, err = self.process.communicate(timeout=60)
        assert self.process.returncode == 0, err
        assert "Traceback" not in err, err
        return out, err


def _committed(loop: Loop, group: str, topic: str) -> int:
    with loop.backends.open_log(loop.home) as log:
        ends, done = log.end_offsets(topic), log.committed(group, topic)
        return sum(ends) - sum(done.get(p, 0) for p in range(len(ends)))


def test_every_component_exports_its_metrics(loop: Loop) -> None:
    scraped: dict[str, list[Sample]] = {}
    # -- the engine: what it applies, counted as it runs -------------------------------
    behind = _committed(loop, "features", "clicks")
    engine = Component(loop, "features", "run", "--status-every", "1s")
    more = loop.root / "metrics.csv"
    more.write_text(clicks_csv(6, datetime.now(tz=UTC)))
    loop.run("produce", "clicks", str(more))
    loop.produced += 6
    wait_for(lambda: total(engine.scrape(), "headwater_engine_events_total") == behind + 6,
             60, f"the engine to count {behind + 6} events")
    fresh = [s for s in engine.samples if s.name == "headwater_engine_freshness_seconds"]
    assert fresh
    assert all(s.value >= 0 for s in fresh)
    scraped["engine"] = engine.samples
    # The console shows what the engine counts.
    console = Console(loop.home, "--server", "none", "--metrics",
                      f"http://127.0.0.1:{engine.port}/metrics", env=loop.env)
    try:
        [shown] = console.data("topics")["data"]["components"]
        figures = {f["name"]: f["value"] for f in shown["figures"]}
        assert figures["engine_events_total"] == behind + 6
        assert figures["engine_late_events_total"] == 0
    finally:
        console.close()
    _, said = engine.stop()
    assert re.search(r"engine: [\d,]+ events applied \([\d,.]+/s\), 0 late", said), said

    # -- the joiner: predictions and their outcomes, joined ------------------------------
    joiner = Component(loop, "labels", "run")
    ids = [f"m-{u}" for u in USERS]
    status, answer = loop.server.post("/predict", {"requests": [
        {"entities": {"user": rid[2:]}, "request_id": rid} for rid in ids]})
    assert status == 200, answer
    now = datetime.now(tz=UTC).isoformat()
    assert loop.server.post("/outcomes", {"outcomes": [
        {"request_id": rid, "entity": rid[2:], "label": 1.0, "ts": now} for rid in ids]})[0] == 200
    wait_for(lambda: total(joiner.scrape(), "headwater_joiner_examples_total",
                           lambda lb: lb["label"] == "joined") == len(ids),
             60, "the joiner to count the examples")
    assert total(joiner.samples, "headwater_joiner_outcomes_total") == len(ids)
    scraped["joiner"] = joiner.samples
    joiner.stop()

    # -- the trainer: learns them and publishes a version -------------------------------
    trainer = Component(loop, "train", "--model", "clicks", "--strategy", "continual",
                        "--volume", "1", "--gate-min-examples", "1", "--status-every", "1s")
    wait_for(lambda: total(trainer.scrape(), "headwater_trainer_versions_total") >= 1, 90,
             "the trainer to publish")
    assert total(trainer.samples, "headwater_trainer_examples_learnt_total") >= len(ids)
    assert total(trainer.samples, "headwater_trainer_trigger_fires_total",
                 lambda lb: lb["trigger"] == "volume") >= 1
    scraped["trainer"] = trainer.samples
    _, said = trainer.stop()
    loop.versions = _versions(loop)
    assert re.search(r"continual trainer: [\d,]+ examples learnt", said), said

    # -- the dashboard charts only what the components export ---------------------------
    with urllib.request.urlopen(f"{loop.server.url}/metrics", timeout=10) as answer:
        scraped["server"] = parse(answer.read().decode())
    exported = {s.name for samples in scraped.values() for s in samples}
    dashboard = json.loads((resources.files("headwater.console") / "grafana.json").read_text())
    charted = {name for panel in dashboard["panels"] for target in panel["targets"]
               for name in re.findall(r"headwater_[a-z_]+", target["expr"])}
    assert charted
    assert charted <= exported, charted - exported


def _versions(loop: Loop) -> int:
    from headwater.registry import open_registry

    with open_registry(settings=loop.backends.settings(loop.home)) as registry:
        return len(registry.versions("clicks"))
