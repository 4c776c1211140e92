"""``headwater eval bandit``: how a bandit would do, simulated or replayed from the log.

``--source simulate`` (the default) plays the routing bandits (Thompson sampling with
Beta and Gaussian posteriors, UCB1; discounted by ``--discount`` or windowed by
``--window``) and two A/B tests (a fixed horizon and a sequential test, each committing
to its winner) on two arms whose success rates change at ``--drift-at``, and reports
reward and regret. ``--source log`` reads the ``decisions`` topic and the ``outcomes``
topic, joins them by request id (the outcome's ``label`` is the reward), and reports the
logged policy's value with IPS, SNIPS and doubly robust estimates of always taking each
action. ``--html PATH`` also writes a self-contained HTML report with the cumulative
regret (or reward) plotted over time.

>>> _rates("0.5, 0.25", option="--rates")
(0.5, 0.25)
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Annotated, Any

import numpy as np
import numpy.typing as npt
import typer

from headwater.bandits import (
    UCB1,
    BetaThompson,
    DriftingBernoulli,
    FixedHorizonTest,
    GaussianThompson,
    SequentialTest,
    SimulationRun,
    SplitTest,
    fixed_action_values,
    join_rewards,
    read_decisions,
    simulate,
)
from headwater.bandits.decision_log import DECISIONS_TOPIC
from headwater.bandits.simulation import LearningPolicy
from headwater.cli.common import (
    CliState,
    exit_code,
    out,
    print_error,
    status,
)
from headwater.config import Settings
from headwater.errors import HeadwaterError, ValidationError
from headwater.labels.schema import OUTCOMES_TOPIC
from headwater.log import Log, open_log
from headwater.reports import Cell, Report

__all__ = ["app", "bandit"]

app = typer.Typer(help="Evaluate bandits.", pretty_exceptions_enable=False)

_ARMS = ("champion", "challenger")


class Source(StrEnum):
    simulate = "simulate"
    log = "log"


def _rates(text: str, *, option: str) -> tuple[float, float]:
    try:
        values = tuple(float(part) for part in text.split(","))
    except ValueError:
        raise ValidationError(option, f"expected two rates like 0.55,0.5, got {text!r}") \
            from None
    if len(values) != 2 or not all(0.0 <= v <= 1.0 for v in values):
        raise ValidationError(option, f"expected two rates in [0, 1], got {text!r}")
    return values[0], values[1]


def _simulation(steps: int, batch: int, seed: int, rates: tuple[float, float],
                drifted: tuple[float, float], drift_at: int, discount: float,
                window: int | None) -> tuple[dict[str, SimulationRun], dict[str, SplitTest]]:
    if steps < 1:
        raise ValidationError("--steps", f"expected an int >= 1, got {steps}")
    if batch < 1:
        raise ValidationError("--batch", f"expected an int >= 1, got {batch}")
    if drift_at <= 0:
        raise ValidationError("--drift-at", f"expected a step > 0, got {drift_at}")
    env = DriftingBernoulli(_ARMS, ((0, rates), (drift_at, drifted)))
    forget: dict[str, Any] = {"window": window} if window is not None else {"discount": discount}
    mean = (rates[0] + rates[1]) / 2

    def run(policy: LearningPolicy) -> SimulationRun:
        return simulate(policy, env, steps=steps, batch=batch,
                        rng=np.random.default_rng(seed + 1))

    runs = {
        "thompson-beta": run(BetaThompson(_ARMS, rng=np.random.default_rng(seed), **forget)),
        "thompson-gaussian": run(GaussianThompson(
            _ARMS, rng=np.random.default_rng(seed), prior_mean=mean, prior_variance=0.25,
            **forget)),
        "ucb1": run(UCB1(_ARMS, rng=np.random.default_rng(seed), **forget)),
    }
    tests = {"ab-fixed": SplitTest(_ARMS, test=FixedHorizonTest(max(2, min(2_000, steps // 10)))),
             "ab-sequential": SplitTest(_ARMS, test=SequentialTest())}
    for name, policy in tests.items():
        runs[name] = run(policy)
    return runs, tests


def _thin(values: npt.ArrayLike, points: int = 400) -> tuple[list[float], list[float]]:
    """``(x, y)`` of a long series, at most ``points`` of them, for a plot."""
    y = np.asarray(values, dtype=np.float64)
    keep = np.unique(np.linspace(0, len(y) - 1, min(points, len(y))).astype(np.int64))
    return (keep + 1).astype(np.float64).tolist(), y[keep].tolist()


def _show(report: Report, html: Path | None) -> None:
    report.render(out())
    if html is not None:
        report.write(html)
        status().print(f"wrote {html}")


def _simulate_report(runs: dict[str, SimulationRun], tests: dict[str, SplitTest],
                     html: Path | None) -> None:
    rows: list[list[Cell]] = []
    for name, run in runs.items():
        test = tests.get(name)
        last = max(len(run.rewards) // 10, 1)
        rows.append([name, int(run.reward), round(run.reward / len(run.rewards), 4),
                     round(run.regret_vs_best_fixed, 1), round(run.regret_vs_oracle, 1),
                     round(run.share("challenger", last=last), 3),
                     (test.winner or "undecided") if test else "",
                     (test.decided_at or "") if test else ""])
    report = Report("Bandit evaluation: simulation")
    report.section("Bandits against A/B tests (expected regret)")
    report.table(["policy", "reward", "mean", "regret vs best fixed", "regret vs oracle",
                  "challenger share (last 10%)", "A/B winner", "decided at"], rows)
    report.line_plot({n: _thin(r.cumulative_regret()) for n, r in runs.items()},
                     title="Cumulative regret against the best fixed arm", xlabel="request",
                     ylabel="regret")
    report.line_plot({n: _thin(r.cumulative_regret(against="oracle"))
                      for n, r in runs.items()},
                     title="Cumulative regret against the oracle", xlabel="request",
                     ylabel="regret")
    _show(report, html)


def _log_report(log: Log, decisions_topic: str, outcomes_topic: str, html: Path | None
                ) -> None:
    decisions = read_decisions(log, decisions_topic)
    outcomes = log.read_table(outcomes_topic)
    if not outcomes.num_rows:
        raise ValidationError("--outcomes", f"topic {outcomes_topic!r} has no outcomes")
    logged = join_rewards(decisions, outcomes)
    values = fixed_action_values(logged)
    mean = float(logged.rewards.mean())
    rows: list[list[Cell]] = []
    for action, estimates in values.items():
        row: list[Cell] = [f"always {action}", int((logged.actions == action).sum())]
        for e in estimates:
            row += [round(e.value, 4), f"[{e.lower:.4f}, {e.upper:.4f}]"]
        rows.append(row)
    report = Report("Bandit evaluation: logged decisions")
    report.text(f"{len(logged):,} decisions with a reward ({logged.unjoined:,} without); "
                f"logged policy value {mean:.4f}")
    report.section("Logged policy")
    report.table(["decisions", "without reward", "value"],
                 [[len(logged), logged.unjoined, round(mean, 4)]])
    report.section("Off-policy estimates")
    report.table(["target policy", "taken", "ips", "ips 95% CI", "snips", "snips 95% CI",
                  "dr", "dr 95% CI"], rows)
    steps = np.arange(1, len(logged) + 1)
    report.line_plot({"logged policy": _thin(np.cumsum(logged.rewards) / steps)},
                     title="Running mean reward of the logged policy", xlabel="decision",
                     ylabel="mean reward")
    _show(report, html)


@app.command("bandit")
def bandit(
    ctx: typer.Context,
    source: Annotated[Source, typer.Option(
        help="simulate: bandits and A/B tests on drifting arms; log: decisions replayed "
        "from the log.")] = Source.simulate,
    steps: Annotated[int, typer.Option(help="Simulated requests.")] = 20_000,
    batch: Annotated[int, typer.Option(help="Requests between two reward updates.")] = 100,
    seed: Annotated[int, typer.Option(help="Seed of the simulation and policies.")] = 0,
    rates: Annotated[str, typer.Option(
        help="Success rates of champion,challenger before the drift.")] = "0.55,0.50",
    drifted: Annotated[str, typer.Option(
        help="Success rates of champion,challenger after the drift.")] = "0.45,0.60",
    drift_at: Annotated[int, typer.Option(help="The step the rates change at.")] = 10_000,
    discount: Annotated[float, typer.Option(help="Per-reward discount of the bandits.")
                        ] = 0.999,
    window: Annotated[int | None, typer.Option(
        help="A sliding window (rewards) instead of the discount.", show_default=False)
                      ] = None,
    log_location: Annotated[str | None, typer.Option(
        "--log", metavar="LOCATION",
        help="The log of --source log (default: the headwater --log, else the settings).",
        show_default=False)] = None,
    decisions: Annotated[str, typer.Option(help="The topic of decisions.")
                         ] = DECISIONS_TOPIC,
    outcomes: Annotated[str, typer.Option(help="The topic of outcomes (label = reward).")
                        ] = OUTCOMES_TOPIC,
    html: Annotated[Path | None, typer.Option(
        "--html", metavar="PATH", help="Also write a self-contained HTML report.",
        show_default=False)] = None,
) -> None:
    """Evaluate bandits: simulate against A/B tests, or replay decisions from the log."""
    try:
        if source is Source.simulate:
            runs, tests = _simulation(steps, batch, seed, _rates(rates, option="--rates"),
                                      _rates(drifted, option="--drifted"), drift_at,
                                      discount, window)
            _simulate_report(runs, tests, html)
            return
        root = ctx.find_root().obj
        if log_location is not None:
            where, settings = log_location, Settings.from_env()
        elif isinstance(root, CliState):
            where, settings = root.location, root.settings
        else:
            settings = Settings.from_env()
            where = settings.log_location
        with open_log(where, settings=settings) as log:
            _log_report(log, decisions, outcomes, html)
    except HeadwaterError as error:
        print_error(error)
        raise typer.Exit(exit_code(error)) from None
    except OSError as error:
        print_error(error)
        raise typer.Exit(1) from None
