"""Benchmark of canary rollback and of the routing policies; prints one JSON object.

- ``canary_breach_to_rollback_ms`` (and ``_p50_ms`` / ``_p99_ms`` over ``--repeats``):
  a :class:`~headwater.evaluation.CanaryController` on an embedded SQLite model store
  and a live :class:`~headwater.serving.Deployment` is handed a window whose error rate
  breaks its guardrail; the time from that call to the end of the rollback (the
  guardrails checked, the policy at 0% swapped into the deployment, the alias moved
  back and recorded), measured by the controller's clock. The headline figure is the
  median.
- ``policy_overhead_us``: per routing policy of :mod:`headwater.serving.policies`
  (champion, shadow, split, canary at 25%), the cost of ``choose(key)`` per request
  minus that of an empty call with the same signature (the baseline, in
  ``policy_baseline_us``), best of ``--rounds`` rounds of ``--calls`` calls over
  distinct keys. ``policy_overhead_within_target`` checks each against 5 µs.

Usage: ``python benchmarks/canary.py [--repeats 30] [--calls 200000]``.
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

from headwater.config import Settings
from headwater.evaluation import ArmWindow, CanaryController, CanaryRamp, Guardrails
from headwater.models import LogisticRegression
from headwater.registry import ModelRegistry, open_registry
from headwater.serving import Canary, ChampionOnly, Deployment, Policy, Route, Shadow, Split

TARGET_US = 5.0


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


def _per_call_ns(choose: Callable[[str], Any], keys: list[str], rounds: int) -> float:
    best = float("inf")
    for _ in range(rounds):
        start = time.perf_counter_ns()
        for key in keys:
            choose(key)
        best = min(best, (time.perf_counter_ns() - start) / len(keys))
    return best


def policy_overheads(calls: int, rounds: int) -> tuple[float, dict[str, float]]:
    """The baseline's µs per call, and each policy's µs per call over it."""
    keys = [f"user-{i}" for i in range(calls)]
    route = Route("champion")

    def empty(key: str) -> Route:
        return route

    policies: dict[str, Policy] = {
        "champion": ChampionOnly(),
        "shadow": Shadow("champion", ("challenger",)),
        "split": Split({"champion": 0.5, "challenger": 0.5}, salt="exp-1"),
        "canary": Canary(25.0, salt="canary-1"),
    }
    baseline = _per_call_ns(empty, keys, rounds)
    overheads = {}
    for name, policy in policies.items():
        cost = _per_call_ns(policy.choose, keys, rounds)
        overheads[name] = round(max(cost - baseline, 0.0) / 1000.0, 3)
    return round(baseline / 1000.0, 3), overheads


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=30)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--rounds", type=int, default=5)
    args = parser.parse_args()
    print("timing rollbacks…", file=sys.stderr)
    times = rollback_times(args.repeats)
    print("timing policies…", file=sys.stderr)
    baseline, overheads = policy_overheads(args.calls, args.rounds)
    p50, p99 = (float(np.percentile(times, q)) for q in (50, 99))
    print(json.dumps({
        "canary_breach_to_rollback_ms": round(p50, 3),
        "canary_breach_to_rollback_p50_ms": round(p50, 3),
        "canary_breach_to_rollback_p99_ms": round(p99, 3),
        "canary_repeats": args.repeats,
        "policy_baseline_us": baseline,
        "policy_overhead_us": overheads,
        "policy_overhead_target_us": TARGET_US,
        "policy_overhead_within_target": all(v <= TARGET_US for v in overheads.values()),
    }, indent=2))


if __name__ == "__main__":
    main()
