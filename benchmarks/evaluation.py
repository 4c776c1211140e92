"""Benchmark evaluation by bandits; prints one JSON object.

- ``policy_overhead_us``: the cost of one ``choose(key)`` of each routing policy (the
  serving ones and the bandits), minus that of an empty method call measured in the
  same run (best of ``--repeats``). Target: at most 5 µs each.
- ``bandit_regret`` / ``ab_regret``: expected regret on a drifting two-arm simulation
  (champion 0.55 vs challenger 0.50, then 0.45 vs 0.60 from step 10,000 of 20,000;
  rewards returned every 100 requests), against the best fixed arm and against the
  oracle, for each bandit and for A/B tests (50/50, fixed horizon of 2,000 per arm or
  sequential mSPRT, then all traffic to the winner). ``same_decision`` says whether the
  bandit favoured the A/B test's winner at the step the test decided.
- ``cb_elec2_reward``: the average reward of each contextual policy on Elec2 as a
  two-action bandit (predict up or down, reward 1 when right), played in row order and
  updated after every row; ``best`` is the best of them. ``basic_features`` repeats the
  best policy without the trailing-24-hour price feature. ``vowpal_wabbit``: the peer on
  the same contexts, in the same order, updated after every row: ``--cb_explore_adf``
  (the context as shared features, crossed with the action: ``-q sa``) exploring by
  epsilon-greedy (0.02, as ours) and by bagging (5 policies), the action drawn from its
  probabilities with a seeded generator; ``best_vs_vowpal_wabbit`` is our best reward
  over VW's best (``null`` with ``missing`` naming it when ``vowpalwabbit`` is not
  installed). LinUCB runs as ``per_policy.linucb``; random is ``per_policy.random``.
- ``offpolicy_elec2``: IPS, SNIPS and doubly robust estimates (95 % normal intervals),
  from the log of an epsilon-greedy policy (epsilon 0.2), of two fixed rules, next to
  their on-policy value.

- ``canary_breach_to_rollback_ms`` (median; ``_p99_ms`` too, over ``--canary-repeats``):
  a :class:`~headwater.evaluation.CanaryController` on an embedded SQLite model store
  and a live :class:`~headwater.serving.Deployment` is handed a window whose error rate
  breaks its guardrail; the time from that call to the end of the rollback (guardrails
  checked, the policy at 0% swapped into the deployment, the alias moved back and
  recorded), by the controller's clock.

Usage: ``python benchmarks/evaluation.py [--repeats 5] [--calls 200000] [--rows N]``.
"""

from __future__ import annotations

import os

os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("OPENBLAS_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import argparse
import json
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from headwater.bandits import (
    UCB1,
    BanditData,
    BetaThompson,
    DriftingBernoulli,
    EpsilonGreedy,
    FixedHorizonTest,
    GaussianThompson,
    LinearPolicy,
    LinearThompson,
    LinUCB,
    SequentialTest,
    SimulationRun,
    SplitTest,
    doubly_robust,
    elec2_bandit,
    ips,
    play,
    progressive_rewards,
    simulate,
    snips,
)
from headwater.bandits.simulation import LearningPolicy
from headwater.config import Settings
from headwater.evaluation import ArmWindow, CanaryController, CanaryRamp, Guardrails
from headwater.models import LogisticRegression
from headwater.registry import ModelRegistry, open_registry
from headwater.routing.policies import Route
from headwater.serving import Canary, ChampionOnly, Deployment, Shadow, Split

ARMS = ("champion", "challenger")
STEPS = 20_000
DRIFT = DriftingBernoulli(ARMS, ((0, (0.55, 0.50)), (10_000, (0.45, 0.60))))


class _Empty:
    """The baseline: a method call that does nothing."""

    arms = ARMS

    def choose(self, key: str) -> str:
        return key


def _time_calls(choose: Callable[[str], object], keys: list[str]) -> float:
    start = time.perf_counter()
    for key in keys:
        choose(key)
    return time.perf_counter() - start


def overheads(repeats: int, calls: int) -> dict[str, float]:
    keys = [f"user-{i}" for i in range(calls)]
    rng = np.random.default_rng(0)

    def trained(policy: Any) -> Any:
        for arm, p in zip(ARMS, (0.55, 0.5), strict=True):
            policy.update(arm, (rng.random(500) < p).astype(float))
        return policy

    policies: dict[str, Any] = {
        "champion": ChampionOnly(),
        "shadow": Shadow("champion", ("challenger",)),
        "split": Split({"champion": 0.5, "challenger": 0.5}, salt="exp"),
        "canary": Canary(10.0),
        "thompson_beta": trained(BetaThompson(ARMS, rng=rng, discount=0.999)),
        "thompson_gaussian": trained(GaussianThompson(ARMS, rng=rng, discount=0.999)),
        "ucb1": trained(UCB1(ARMS, rng=rng, window=2_000)),
        "ab_test_deciding": SplitTest(ARMS, test=FixedHorizonTest(10_000)),
    }
    empty = _Empty()
    best = {name: float("inf") for name in policies}
    for _ in range(repeats):
        base = _time_calls(empty.choose, keys)
        for name, policy in policies.items():
            spent = _time_calls(policy.choose, keys) - base
            best[name] = min(best[name], spent / calls * 1e6)
    assert all(isinstance(p.choose("k"), Route) for p in policies.values())
    return {name: round(v, 3) for name, v in best.items()}


def _regret(run: SimulationRun) -> dict[str, float]:
    return {"vs_best_fixed": round(run.regret_vs_best_fixed, 1),
            "vs_oracle": round(run.regret_vs_oracle, 1), "reward": run.reward}


def regrets() -> tuple[dict[str, Any], dict[str, Any]]:
    bandits: dict[str, Callable[[np.random.Generator], LearningPolicy]] = {
        "thompson_beta_discounted": lambda r: BetaThompson(ARMS, rng=r, discount=0.999),
        "thompson_beta_window": lambda r: BetaThompson(ARMS, rng=r, window=2_000),
        "thompson_gaussian_discounted": lambda r: GaussianThompson(
            ARMS, rng=r, discount=0.999, prior_mean=0.5, prior_variance=0.25),
        "ucb1_discounted": lambda r: UCB1(ARMS, rng=r, discount=0.999),
        "ucb1_window": lambda r: UCB1(ARMS, rng=r, window=2_000),
        "thompson_beta_stationary": lambda r: BetaThompson(ARMS, rng=r),
    }
    runs = {name: simulate(make(np.random.default_rng(0)), DRIFT, steps=STEPS, batch=100,
                           rng=np.random.default_rng(1)) for name, make in bandits.items()}
    ab: dict[str, Any] = {}
    decided: dict[str, tuple[str, int]] = {}
    for name, test in (("fixed_horizon_2000", FixedHorizonTest(2_000)),
                       ("sequential_msprt", SequentialTest())):
        policy = SplitTest(ARMS, test=test)
        run = simulate(policy, DRIFT, steps=STEPS, batch=100, rng=np.random.default_rng(1))
        assert policy.winner is not None
        assert policy.decided_at is not None
        decided[name] = (policy.winner, policy.decided_at)
        ab[name] = {**_regret(run), "winner": policy.winner, "decided_at": policy.decided_at}
    out: dict[str, Any] = {}
    for name, run in runs.items():
        same = {}
        for test_name, (winner, at) in decided.items():
            window = run.choices[max(at - 1_000, 0):at]
            same[test_name] = bool(np.mean(window == ARMS.index(winner)) > 0.5)
        out[name] = {**_regret(run), "same_decision": same,
                     "challenger_share_last_5000": round(run.share("challenger", last=5_000), 3)}
    return out, ab


def contextual(rows: int | None) -> dict[str, Any]:
    data = elec2_bandit(limit=rows)
    d = data.contexts.shape[1]
    policies: dict[str, Callable[[int], LinearPolicy]] = {
        "random": lambda d: EpsilonGreedy(d, rng=np.random.default_rng(0), epsilon=1.0),
        "epsilon_greedy": lambda d: EpsilonGreedy(d, rng=np.random.default_rng(0),
                                                  epsilon=0.02),
        "linucb": lambda d: LinUCB(d, rng=np.random.default_rng(0), alpha=0.1),
        "linucb_forgetting": lambda d: LinUCB(d, rng=np.random.default_rng(0), alpha=0.1,
                                              discount=0.9999),
        "linear_thompson": lambda d: LinearThompson(d, rng=np.random.default_rng(0),
                                                    scale=0.05),
        "linear_thompson_forgetting": lambda d: LinearThompson(
            d, rng=np.random.default_rng(0), scale=0.05, discount=0.9999),
    }
    rewards = {name: round(play(make(d), data).mean_reward, 4)
               for name, make in policies.items()}
    best = max((n for n in rewards if n != "random"), key=rewards.__getitem__)
    basic = elec2_bandit(limit=rows, streaming=False)
    basic_reward = play(policies[best](basic.contexts.shape[1]), basic).mean_reward
    last = data.contexts[:, data.features.index("last_label")] >= 0.5
    peer = {flags: _vw_contextual(data, flags) for flags in VW_EXPLORATION}
    found = {flags: reward for flags, reward in peer.items() if reward is not None}
    return {"rows": len(data), "per_policy": rewards, "best": best,
            "best_reward": rewards[best], "basic_features": round(basic_reward, 4),
            "previous_label_rule": round(float(data.rewards[np.arange(len(data)),
                                                            last.astype(int)].mean()), 4),
            "vowpal_wabbit": {f"cb_explore_adf {flags}": reward
                              for flags, reward in found.items()},
            "best_vs_vowpal_wabbit": round(rewards[best] / max(found.values()), 3)
            if found else None,
            "missing": [] if found else ["vowpalwabbit"]}


#: Vowpal Wabbit's exploration in ``cb_elec2_reward``: epsilon-greedy as ours, bagging.
VW_EXPLORATION = ("--epsilon 0.02", "--bag 5")


def _vw_contextual(data: BanditData, flags: str) -> float | None:
    """VW's mean reward on ``data`` (choose, learn the chosen action's cost, every row)."""
    try:
        import vowpalwabbit
    except ImportError:
        return None
    vw = vowpalwabbit.Workspace(f"--cb_explore_adf -q sa --quiet {flags}")
    rng = np.random.default_rng(0)
    names = [name.replace(":", "_").replace("|", "_").replace(" ", "_")
             for name in data.features]
    actions = [f"|a {action}" for action in data.actions]
    total = 0.0
    for t, context in enumerate(data.contexts.tolist()):
        shared = "shared |s " + " ".join(f"{name}:{value!r}" for name, value
                                         in zip(names, context, strict=True) if value)
        pmf = np.asarray(vw.predict([shared, *actions]), dtype=np.float64)
        chosen = int(rng.choice(len(pmf), p=pmf / pmf.sum()))
        reward = float(data.rewards[t, chosen])
        total += reward
        labelled = list(actions)
        labelled[chosen] = f"0:{1.0 - reward!r}:{float(pmf[chosen])!r} {actions[chosen]}"
        vw.learn([shared, *labelled])
    vw.finish()
    return round(total / len(data), 4) if len(data) else None


def offpolicy(data: BanditData) -> dict[str, Any]:
    n = len(data)
    rows = np.arange(n)
    logging = EpsilonGreedy(data.contexts.shape[1], rng=np.random.default_rng(1), epsilon=0.2)
    logged = play(logging, data)
    model = progressive_rewards(data.contexts, logged.actions, logged.rewards, 2)
    last = (data.contexts[:, data.features.index("last_label")] >= 0.5).astype(np.int64)
    targets = {"previous_label_rule": last, "always_up": np.ones(n, dtype=np.int64)}
    out: dict[str, Any] = {"logging_policy": "epsilon_greedy(0.2)",
                           "logging_reward": round(logged.mean_reward, 4)}
    for name, action in targets.items():
        pi = (logged.actions == action).astype(float)
        estimates = [ips(logged.rewards, logged.propensities, pi),
                     snips(logged.rewards, logged.propensities, pi),
                     doubly_robust(logged.rewards, logged.propensities, pi,
                                   model[rows, logged.actions], model[rows, action])]
        truth = float(data.rewards[rows, action].mean())
        out[name] = {"on_policy": round(truth, 4), **{
            e.method: {"value": round(e.value, 4), "ci95": [round(e.lower, 4),
                                                            round(e.upper, 4)],
                       "covers": e.covers(truth)} for e in estimates}}
    return out


def _window(rng: np.random.Generator, n: int, errors: int = 0) -> ArmWindow:
    y = rng.integers(0, 2, size=n).astype(float)
    scores = np.clip(0.3 + 0.4 * y + rng.normal(scale=0.1, size=n), 0.01, 0.99)
    return ArmWindow.of(scores, errors=errors, latency_ms=rng.normal(2.0, 0.1, size=n), y=y,
                        y_scores=scores)


def _register(registry: ModelRegistry, root: Path, versions: int) -> None:
    for i in range(versions):
        model = LogisticRegression()
        x = np.linspace(-1.0, 1.0, 200)
        model.learn({"x": x}, (x > 0.1 * i).astype(int))
        model.save(root / f"m{i}")
        registry.register("bench", root / f"m{i}")
    registry.promote("bench", 1, actor="bench", reason="the first champion")
    registry.promote("bench", 2, "challenger", actor="bench", reason="an earlier experiment")


def rollback_times(repeats: int) -> list[float]:
    """Milliseconds from a breaching window to the end of the rollback, per repeat."""
    rng = np.random.default_rng(0)
    guardrails = Guardrails(min_requests=100, min_labels=100)
    healthy, champion = _window(rng, 2_000), _window(rng, 5_000)
    breach = _window(rng, 2_000, errors=200)
    times = []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        registry = open_registry(str(root / "registry"), settings=Settings())
        _register(registry, root, 3)
        deployment = Deployment(registry, "bench", ChampionOnly())
        deployment.reload()
        for i in range(repeats):
            controller = CanaryController(registry, "bench", 3, apply=deployment.reload,
                                          ramp=CanaryRamp(guardrails=guardrails),
                                          salt=f"run-{i}")
            controller.start()
            controller.observe(healthy, champion)  # 1% -> 5%
            step = controller.observe(breach, champion)
            assert step.action == "rollback", step
            assert controller.breach_to_rollback_us is not None
            assert registry.aliases("bench")["challenger"] == 2
            times.append(controller.breach_to_rollback_us / 1000.0)
        registry.close()
    return times


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rows", type=int, default=None, help="Elec2 rows (default: all)")
    parser.add_argument("--canary-repeats", type=int, default=30)
    args = parser.parse_args()
    started = time.perf_counter()
    bandit, ab = regrets()
    cb = contextual(args.rows)
    figures: dict[str, Any] = {
        "policy_overhead_us": overheads(args.repeats, args.calls),
        "bandit_regret": bandit,
        "ab_regret": ab,
        "cb_elec2_reward": cb,
        "offpolicy_elec2": offpolicy(elec2_bandit(limit=args.rows)),
    }
    print("timing canary rollbacks…", file=sys.stderr)
    times = rollback_times(args.canary_repeats)
    figures["canary_breach_to_rollback_ms"] = round(float(np.percentile(times, 50)), 3)
    figures["canary_breach_to_rollback_p99_ms"] = round(float(np.percentile(times, 99)), 3)
    figures["seconds"] = round(time.perf_counter() - started, 1)
    print(json.dumps(figures))


if __name__ == "__main__":
    main()
