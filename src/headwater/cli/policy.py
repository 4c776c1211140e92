"""``headwater policy``: see or change, live, how a running prediction server routes.

``headwater policy show`` prints the server's deployment (``GET /models``);
``headwater policy set KIND …`` sends ``PUT /admin/policy`` with the admin token, and the
server routes with the new policy from its next request (champion, shadow, split,
canary, or a bandit: thompson, gaussian_thompson, ucb1). The change is recorded by the
server with who and why. Every arm must be an alias of the served model: the command
checks the server's aliases first and the server checks again (exit 2 naming the arm).
"""

from __future__ import annotations

from pathlib import Path
from typing import Annotated, Any

import typer

from headwater.cli.common import out, read_token_file, split_names, state_of
from headwater.errors import ValidationError
from headwater.routing import KINDS, PolicySpec, build, check_arms, parse_spec
from headwater.serving.client import AdminClient

__all__ = ["app", "spec_of"]

app = typer.Typer(help="See or change how a running prediction server routes requests.",
                  no_args_is_help=True)


def spec_of(kind: str, *, arms: list[str], percent: float | None, weights: list[float],
            discount: float | None, seed: int | None) -> PolicySpec:
    """The policy the options describe (checked by building it once)."""
    if kind not in KINDS:
        raise ValidationError("policy.kind", f"expected one of {', '.join(KINDS)}, got {kind!r}")
    spec: dict[str, Any] = {"kind": kind}
    if kind == "champion":
        spec["arm"] = arms[0] if arms else "champion"
    elif kind == "shadow":
        spec.update(arm=arms[0] if arms else "champion", shadows=arms[1:] or ["challenger"])
    elif kind == "split":
        chosen = arms or ["champion", "challenger"]
        if weights and len(weights) != len(chosen):
            raise ValidationError("--weights", f"{len(weights)} weights for {len(chosen)} arms")
        spec["weights"] = dict(zip(chosen, weights or [1.0] * len(chosen), strict=True))
    elif kind == "canary":
        spec.update(percent=5.0 if percent is None else percent,
                    canary=arms[1] if len(arms) > 1 else "challenger",
                    stable=arms[0] if arms else "champion")
    else:
        spec["arms"] = arms or ["champion", "challenger"]
        if discount is not None:
            spec["discount"] = discount
        if seed is not None:
            spec["seed"] = seed
    parsed = parse_spec(spec)
    build(parsed)
    return parsed


UrlOption = Annotated[str, typer.Option("--url", help="The prediction server.")]


@app.command("show")
def show(url: UrlOption = "http://127.0.0.1:8000") -> None:
    """Print the server's versions, aliases and routing policy."""
    out().print_json(data=AdminClient(url).models())


@app.command("set")
def set_(
    ctx: typer.Context,
    kind: Annotated[str, typer.Argument(help=f"One of {', '.join(KINDS)}.")],
    reason: Annotated[str, typer.Option(help="Why (recorded by the server).",
                                        show_default=False)],
    arms: Annotated[str | None, typer.Option(
        help="Comma-separated aliases (the first is the champion or stable arm).")] = None,
    percent: Annotated[float | None, typer.Option(help="The canary's share.")] = None,
    weights: Annotated[str | None, typer.Option(help="A split's weights, one per arm.")
    ] = None,
    discount: Annotated[float | None, typer.Option(help="A bandit's forgetting factor.")
    ] = None,
    seed: Annotated[int | None, typer.Option(help="A bandit's seed.")] = None,
    url: UrlOption = "http://127.0.0.1:8000",
    token_file: Annotated[Path | None, typer.Option(
        "--token-file", help="A file holding the admin token (default: "
        "$HEADWATER_ADMIN_TOKEN).")] = None,
) -> None:
    """Route with another policy from the server's next request."""
    try:
        numbers = [float(w) for w in split_names(weights, option="--weights")]
    except ValueError:
        raise ValidationError("--weights", f"expected numbers, got {weights!r}") from None
    spec = spec_of(kind, arms=list(split_names(arms, option="--arms")), percent=percent,
                   weights=numbers, discount=discount, seed=seed)
    token = read_token_file(token_file) if token_file else state_of(ctx).settings.admin_token
    server = AdminClient(url, token)
    served = server.models()
    check_arms(build(spec), served.get("aliases") or {}, model=str(served["model"]))
    answer = server.set_policy(spec, reason=reason, actor="headwater-cli")
    out().print_json(data=answer["models"]["policy"])
