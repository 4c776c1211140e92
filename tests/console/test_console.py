"""``headwater ui`` over a real run, through HTTP on loopback: every page shows the
run's values, on the embedded default and on Redis + PostgreSQL."""

from __future__ import annotations

import json
import re
import urllib.error
import urllib.request
from datetime import UTC, datetime
from urllib.parse import quote

import pytest

from tests.console.loop import USERS, Loop, clicks_csv
from tests.processes import wait_for

pytestmark = pytest.mark.slow


def _status(url: str, method: str = "GET") -> tuple[int, bytes]:
    request = urllib.request.Request(url, method=method)
    try:
        with urllib.request.urlopen(request, timeout=30) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_topics_show_offsets_groups_and_dead_letters(loop: Loop) -> None:
    topics = {t["name"]: t for t in loop.console.data("topics")["data"]["topics"]}
    clicks = topics["clicks"]
    assert clicks["events"] == loop.produced == sum(clicks["ends"])
    groups = {g["group"]: g for g in clicks["groups"]}
    assert groups["features"]["lag"] == 0  # the engine applied every click
    assert clicks["dead"]["count"] == 1
    [reason] = clicks["dead"]["reasons"]
    assert (reason["field"], reason["count"]) == ("amount", 1)
    assert "12;5" in reason["examples"][0]  # the refused row itself
    assert topics["predictions"]["events"] == 24
    assert "clicks.dlq" not in topics  # shown under its topic, not as one more


def test_features_show_the_engines_values(loop: Loop) -> None:
    [activity] = loop.console.data("features")["data"]["sets"]
    rows = {f["name"]: f for f in activity["features"]}
    assert set(rows) == {"clicks", "spend"}
    assert rows["clicks"]["lag"] == 0
    assert rows["clicks"]["source"] == "clicks"
    shown = {v["entity"]: v["values"] for v in activity["values"]}
    assert set(shown) == set(USERS)
    for n, user in enumerate(USERS):  # a recount of the CSV: user n clicked at i % 4 == n
        mine = [i for i in range(loop.produced) if i % len(USERS) == n]
        assert shown[user]["clicks"] == len(mine)
        assert shown[user]["spend"] == pytest.approx(sum(1.5 * (i % 7) for i in mine))


def test_models_show_versions_lineage_and_alias_history(loop: Loop) -> None:
    [model] = loop.console.data("models")["data"]["models"]
    assert model["name"] == "clicks"
    assert model["versions"] == loop.versions
    assert re.findall(r'data-version="(\d+)"', model["graph"]) == ["1", "2"]
    assert model["graph"].count('class="edge"') == 1  # v1 -> v2
    assert model["history"][-1]["reason"] == "start the loop"
    assert model["history"][-1]["to"] == 1
    version = loop.console.data("models/clicks/2")["data"]
    assert version["parent"] == 1
    assert version["created_by"]["trainer"] != "manual"
    assert json.loads(version["record"])["version"] == 2
    first = loop.console.data("models/clicks/1")["data"]
    assert first["children"] == [2]


def test_serving_shows_the_servers_requests_and_arms(loop: Loop) -> None:
    serving = loop.console.data("serving")["data"]
    assert serving["reachable"], serving["error"]
    endpoints = {e["endpoint"]: e for e in serving["endpoints"]}
    assert endpoints["/predict"]["requests"] == 1  # one batch of 24
    assert endpoints["/predict"]["p50"] is not None
    assert serving["counters"]["predictions"] == 24
    assert serving["deployment"]["policy"]["kind"] == "champion"
    assert [(a["arm"], a["version"], a["predictions"]) for a in serving["arms"]] == [
        ("champion", 1, 24)]


def test_evaluation_lists_and_serves_reports_only(loop: Loop) -> None:
    report = loop.root / "report.html"
    loop.run("report", "--model", "clicks", "--html", str(report))
    [listed] = [r for r in loop.console.data("evaluation")["data"]["reports"]
                if r["name"] == "report.html"]
    status, body = _status(f"{loop.console.url}/report?path={quote(listed['path'])}")
    assert (status, body) == (200, report.read_bytes())
    elsewhere = loop.root / "features.py"
    assert _status(f"{loop.console.url}/report?path={quote(str(elsewhere))}")[0] == 404


def test_pages_need_nothing_from_the_network(loop: Loop) -> None:
    for page in ("topics", "features", "models", "models/clicks/1", "serving", "evaluation"):
        status, body = _status(f"{loop.console.url}/{page}")
        assert status == 200, page
        html = body.decode()
        assert not re.search(r'(src|href)="(https?:)?//', html), page
        for asset in re.findall(r'(?:src|href)="(/static/[^"]+)"', html):
            assert _status(f"{loop.console.url}{asset}")[0] == 200, asset
    assert _status(f"{loop.console.url}/nowhere")[0] == 404
    assert _status(f"{loop.console.url}/models/clicks/99")[0] == 404
    assert _status(f"{loop.console.url}/static/..%2Fapp.py")[0] == 404
    assert _status(f"{loop.console.url}/topics", "POST")[0] == 405


def test_counters_move_when_events_are_produced(loop: Loop) -> None:
    before = {t["name"]: t for t in loop.console.data("topics")["data"]["topics"]}["clicks"]
    more = loop.root / "more.csv"
    more.write_text(clicks_csv(8, datetime.now(tz=UTC)))
    loop.run("produce", "clicks", str(more))
    after = {t["name"]: t for t in loop.console.data("topics")["data"]["topics"]}["clicks"]
    assert after["events"] == before["events"] + 8
    assert after["rate"] > 0  # 8 events between the two reads
    loop.produced += 8


def test_a_rollout_started_from_the_cli_appears(loop: Loop) -> None:
    loop.run("models", "register", "clicks", "--builtin", "logistic", "--reason",
             "a challenger")
    loop.versions += 1
    loop.run("models", "promote", "clicks", str(loop.versions), "--alias", "challenger",
             "--reason", "canary it")
    loop.run("policy", "set", "canary", "--percent", "20", "--reason", "try the challenger",
             "--url", loop.server.url, "--token-file", str(loop.token_file))

    def shown() -> bool:
        deployment = loop.console.data("serving")["data"]["deployment"]
        return bool(deployment["policy"]["kind"] == "canary"
                    and deployment["arms"].get("challenger") == loop.versions)

    wait_for(shown, 30, "the canary on the serving page")
    [model] = loop.console.data("models")["data"]["models"]
    assert model["aliases"]["challenger"] == loop.versions
    assert model["history"][0]["reason"] == "canary it"
