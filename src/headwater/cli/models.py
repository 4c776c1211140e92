"""``headwater models``: register, list, show, lineage, reproduce, promote, rollback,
history and trust.

The model store is ``--registry LOCATION`` (a directory, ``postgresql://…``), by
default ``$HEADWATER_REGISTRY_URL`` or ``<$HEADWATER_HOME or .headwater>/registry``;
``--artifacts`` (default ``$HEADWATER_ARTIFACTS_URL``) moves the artifacts elsewhere
(a directory or an fsspec URL). A version is given by number
(``3`` or ``v3``) or by alias (``champion``). ``reproduce`` replays a version's
training slice from the log (the global ``--log``) and exits 1 unless the same version
comes out.

``register`` starts a loop: it adds a version from a model file (a saved Headwater
model, a ``.skops`` file, a pickled scikit-learn or River estimator) or an untrained
built-in model with its hyper-parameters, its lineage saying it was registered by hand.
``trust --pickle`` is the operator's one-time opt-in to artifacts that can run code
when loaded (pickle-based formats, skops types outside skops' trusted list), recorded
with who, when and why, and revoked with ``--revoke``; without it no component loads
such an artifact, and ``register`` does not read a pickle. ``show`` says whether the
registry trusts them. ``promote`` and ``rollback`` refuse a version that would not load.

>>> _metrics({"logloss": 0.312345, "auc": 0.8})
'auc=0.8 logloss=0.3123'
"""

from __future__ import annotations

import os
import tempfile
import typing
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Annotated, Any, Final, cast
from urllib.parse import urlsplit

import msgspec
import typer
from rich.table import Table
from rich.text import Text
from rich.tree import Tree

from headwater.cli.common import (
    EXIT_FAILURE,
    format_count,
    out,
    split_names,
    state_of,
    status,
)
from headwater.cli.tables import FormatOption, emit
from headwater.config import Settings
from headwater.errors import UnknownModelError, UntrustedArtifactError, ValidationError
from headwater.learning import reproduce
from headwater.learning.served_state import reproduce_served
from headwater.models import BUILTINS, Model, build_model, load_model, read_model
from headwater.models.artifact import read_manifest
from headwater.registry import (
    Creator,
    Lineage,
    LineageTree,
    ModelRegistry,
    ModelVersion,
    Reproduction,
    TrustChange,
    open_registry,
)
from headwater.registry.lineage import flatten_params
from headwater.registry.names import check_model_name, parse_ref
from headwater.registry.registry import trust_hint
from headwater.registry.reproduction import Mode
from headwater.time import from_micros

__all__ = ["app"]

app = typer.Typer(help="Register, list, inspect, promote and roll back model versions.",
                  no_args_is_help=True)

_SHOWN_METRICS: Final = 4
_ENCODER: Final = msgspec.json.Encoder()
_STATUS_STYLE: Final = {"candidate": "", "rejected": "red", "archived": "dim"}

NameArg = Annotated[str, typer.Argument(help="The model's name.", show_default=False)]
ReasonOpt = Annotated[str, typer.Option(help="Why (kept in the alias history).",
                                        show_default=False)]
ActorOpt = Annotated[str | None, typer.Option(
    help="Who or what moves the alias (default: your user name).", show_default=False)]
AliasOpt = Annotated[str, typer.Option(help="The alias to move.")]


@dataclass(frozen=True, slots=True)
class _Where:
    registry: str | None
    artifacts: str | None


@app.callback()
def _models(
    ctx: typer.Context,
    registry: Annotated[str | None, typer.Option(
        "--registry", metavar="LOCATION",
        help="The model store: a directory or postgresql://…. Default: "
        "$HEADWATER_REGISTRY_URL or <$HEADWATER_HOME or .headwater>/registry.")] = None,
    artifacts: Annotated[str | None, typer.Option(
        "--artifacts", metavar="LOCATION",
        help="Where the artifacts are: a directory or an fsspec URL. "
        "Default: $HEADWATER_ARTIFACTS_URL or <registry>/artifacts.")] = None,
) -> None:
    ctx.obj = _Where(registry, artifacts)


def missing_store(location: str | None, settings: Settings) -> str | None:
    """The model store's directory when ``location`` (default: the settings') is a local
    one that does not exist yet, else ``None``: a command that only reads says so
    instead of creating an empty store where it runs."""
    where = location if location is not None else settings.registry_location
    scheme = urlsplit(where).scheme if "://" in where else ""
    if scheme not in ("", "file"):
        return None
    root = Path(urlsplit(where).path if scheme == "file" else where)
    return None if (root / "registry.db").exists() else str(root)


def _open(ctx: typer.Context) -> ModelRegistry:
    where = ctx.find_object(_Where) or _Where(None, None)
    return open_registry(where.registry, artifacts=where.artifacts,
                         settings=state_of(ctx).settings)


@app.command("list")
def list_(ctx: typer.Context, fmt: FormatOption = "table") -> None:
    """List the models with their versions and aliases."""
    where = ctx.find_object(_Where) or _Where(None, None)
    missing = missing_store(where.registry, state_of(ctx).settings)
    if missing is not None and fmt == "table":
        out().print(f"no models (no model store at {missing})", markup=False)
        return
    rows: list[list[Any]] = []
    if missing is None:
        with _open(ctx) as registry:
            for model in registry.models():
                aliases = registry.aliases(model.name)
                rows.append([model.name, model.versions, model.latest, aliases,
                             _when(model.updated_at)])
    if not rows and fmt == "table":
        out().print("no models")
        return
    if fmt == "table":
        rows = [[name, format_count(n), f"v{latest}",
                 ", ".join(f"{a}→v{v}" for a, v in aliases.items()), updated]
                for name, n, latest, aliases, updated in rows]
    elif fmt == "csv":
        rows = [[*row[:3], ";".join(f"{a}={v}" for a, v in row[3].items()), row[4]]
                for row in rows]
    emit(["model", "versions", "latest", "aliases", "updated"], rows, fmt)


@app.command("show")
def show(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str | None, typer.Argument(
        help="A version number or alias (default: the latest version).",
        show_default=False)] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the record as JSON.")] = False,
    verify: Annotated[bool, typer.Option(
        "--verify", help="Also hash the artifact and check it against the record.")] = False,
) -> None:
    """Show a version: status, artifact, lineage, metrics and aliases."""
    with _open(ctx) as registry:
        record = _version(registry, name, version)
        if verify:
            registry.verify(name, record.version)
        if as_json:
            typer.echo(_ENCODER.encode(record).decode())
        else:
            _print_version(registry, record)
        if verify:
            status().print(f"artifact of {name} v{record.version} verified: sha256 "
                           f"{record.artifact.sha256}")


@app.command("lineage")
def lineage(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str | None, typer.Argument(
        help="Draw only this version's ancestors and descendants.", show_default=False)] = None,
) -> None:
    """Draw the lineage tree: each version under the one it was trained from."""
    with _open(ctx) as registry:
        ref = None if version is None else parse_ref(version, field="VERSION")
        tree = registry.lineage_tree(check_model_name(name, field="NAME"), ref)
    out().print(draw_tree(tree))


@app.command("reproduce")
def reproduce_(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, typer.Argument(help="The version (a number or an alias).",
                                           show_default=False)],
    mode: Annotated[str, typer.Option(
        help="What decides: artifact (same SHA-256), metrics (recorded metrics within "
        "--tolerance) or auto (artifact for deterministic models).")] = "auto",
    tolerance: Annotated[float, typer.Option(
        help="The largest difference allowed between a recorded and a recomputed "
        "metric.")] = 1e-6,
    batch_rows: Annotated[int | None, typer.Option(
        help="Examples learnt per step (default: what the version's trainer recorded, "
        "else 4096).")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="Print the result as JSON.")] = False,
    update: Annotated[int | None, typer.Option(
        "--update", min=0, help="Rebuild the served state (VERSION, the model update at "
        "this offset of the model_updates topic) and check it against the scores served "
        "with it and a replay of the update's slice.")] = None,
) -> None:
    """Replay a version's training slice from the log and check the same version comes
    out (exit code 1 if not); with --update, rebuild a served state (version, update)."""
    state = state_of(ctx)
    if update is not None:
        _reproduce_served(ctx, name, version, update, as_json=as_json, batch_rows=batch_rows,
                          tolerance=tolerance)
        return
    with _open(ctx) as registry, state.open_log() as log:
        result = reproduce(registry, log, check_model_name(name, field="NAME"),
                           parse_ref(version, field="VERSION"), mode=_mode(mode),
                           tolerance=tolerance, batch_rows=batch_rows)
    if as_json:
        typer.echo(_ENCODER.encode({**result._asdict(), "checks": [
            c._asdict() for c in result.checks]}).decode())
    else:
        _print_reproduction(result)
    if not result.matches:
        raise typer.Exit(EXIT_FAILURE)


def _reproduce_served(ctx: typer.Context, name: str, version: str, update: int, *,
                      as_json: bool, batch_rows: int | None, tolerance: float) -> None:
    with _open(ctx) as registry, state_of(ctx).open_log() as log:
        found = reproduce_served(registry, log, check_model_name(name, field="NAME"),
                                 parse_ref(version, field="VERSION"), update,
                                 batch_rows=batch_rows, tolerance=tolerance)
    if as_json:
        typer.echo(_ENCODER.encode({**asdict(found),
                                    "matches": found.matches}).decode())
    else:
        verdict = (Text("reproduced", style="bold green") if found.matches
                   else Text("MISMATCH", style="bold red"))
        out().print(Text.assemble(
            verdict, f": {found.model} v{found.version} with update {found.update}: "
            f"{found.predictions} predictions served with it rescored, largest gap "
            f"{found.max_score_gap:g}; {found.examples} examples of its slice replayed, "
            f"largest gap {found.replay_max_gap:g} (tolerance {found.tolerance:g})"))
    if not found.matches:
        raise typer.Exit(EXIT_FAILURE)


@app.command("promote")
def promote(
    ctx: typer.Context,
    name: NameArg,
    version: Annotated[str, typer.Argument(help="The version (a number or an alias).",
                                           show_default=False)],
    reason: ReasonOpt,
    alias: AliasOpt = "champion",
    actor: ActorOpt = None,
) -> None:
    """Point an alias (champion by default) at a version."""
    with _open(ctx) as registry:
        move = registry.promote(check_model_name(name, field="NAME"),
                                parse_ref(version, field="VERSION"), alias,
                                actor=actor or _default_actor(), reason=reason)
    out().print(f"{name} {move.alias} → v{move.to_version}"
                + (f" (was v{move.from_version})" if move.from_version is not None else ""))


@app.command("rollback")
def rollback(
    ctx: typer.Context,
    name: NameArg,
    reason: ReasonOpt,
    alias: AliasOpt = "champion",
    actor: ActorOpt = None,
) -> None:
    """Move an alias back to where it pointed before its latest move."""
    with _open(ctx) as registry:
        move = registry.rollback(check_model_name(name, field="NAME"), alias,
                                 actor=actor or _default_actor(), reason=reason)
    out().print(f"{name} {move.alias} rolled back to v{move.to_version} "
                f"(was v{move.from_version})")


@app.command("history")
def history(
    ctx: typer.Context,
    name: NameArg,
    alias: Annotated[str | None, typer.Option(help="Only this alias.")] = None,
    as_json: Annotated[bool, typer.Option("--json", help="One JSON object per move.")] = False,
) -> None:
    """The append-only history of alias moves: when, who, why, from and to."""
    with _open(ctx) as registry:
        moves = registry.history(check_model_name(name, field="NAME"), alias)
    if as_json:
        for move in moves:
            typer.echo(_ENCODER.encode(move).decode())
        return
    if not moves:
        out().print("no alias moves")
        return
    table = Table("#", "when", "alias", "move", "from", "to", "actor", "reason")
    for move in moves:
        table.add_row(str(move.seq), _when(move.at), move.alias, move.kind,
                      _number(move.from_version), _number(move.to_version), move.actor,
                      move.reason)
    out().print(table)


@app.command("register")
def register(
    ctx: typer.Context,
    name: NameArg,
    source: Annotated[Path | None, typer.Argument(
        help="A saved Headwater model (a directory), a .skops file, or a pickled "
        "scikit-learn or River estimator (.pkl, .pickle, .joblib; read only if the "
        "registry trusts pickle-based artifacts).", show_default=False)] = None,
    builtin: Annotated[str | None, typer.Option(
        "--builtin", help=f"Instead of a file, an untrained built-in model: "
        f"{', '.join(BUILTINS)}.", show_default=False)] = None,
    param: Annotated[list[str] | None, typer.Option(
        "--param", metavar="NAME=VALUE", help="A hyper-parameter of the built-in model "
        "(repeat for each; the value is JSON — 0.1, true, [8, 4] — or else text).",
        show_default=False)] = None,
    features: Annotated[str | None, typer.Option(
        help="The estimator's input columns, comma-separated, in the order it was fitted "
        "on (needed when the file does not record them).", show_default=False)] = None,
    promote_: Annotated[bool, typer.Option(
        "--promote", help="Point --alias at the new version.")] = False,
    alias: AliasOpt = "champion",
    actor: ActorOpt = None,
    reason: Annotated[str | None, typer.Option(
        help="Why (kept in the lineage and the alias history).", show_default=False)] = None,
) -> None:
    """Register a first (or any) version of NAME from a model file, or an untrained
    built-in model with its hyper-parameters."""
    check_model_name(name, field="NAME")
    if (source is None) == (builtin is None):
        raise ValidationError("SOURCE", "give a model file or --builtin KIND (one of them)")
    if builtin is None and param:
        raise ValidationError("--param", "hyper-parameters are for --builtin; a model file "
                              "has its own")
    who = actor or _default_actor()
    with _open(ctx) as registry:
        trusted = registry.trusts("pickle")
        columns = split_names(features, option="--features") or None
        try:
            if builtin is not None:
                if columns is not None:
                    raise ValidationError("--features", "a built-in model learns its columns "
                                          "from the first examples")
                model: Model = build_model(builtin, _params(param or []), field="--param")
                origin = f"an untrained built-in {builtin} model"
            else:
                assert source is not None
                model = _read(source, trusted, columns)
                origin = str(source)
            with tempfile.TemporaryDirectory(prefix="headwater-register-") as tmp:
                directory = source if source is not None and source.is_dir() else (
                    Path(tmp) / "model")
                if directory != source:
                    model.save(directory)
                load_model(directory, trusted=trusted)  # as the store's rule will load it
                lineage = Lineage(hyperparameters=flatten_params(model.params()),
                                  created_by=Creator(
                                      trainer="register-cli",
                                      trigger="initial" if builtin else "manual",
                                      reason=f"registered by hand by {who} from {origin}"
                                      + (f": {reason}" if reason else "")))
                version = registry.register(name, directory, lineage=lineage)
                fmt = read_manifest(directory).format
        except UntrustedArtifactError as exc:
            hint = (" (or save a scikit-learn estimator with skops.io.dump and register the "
                    ".skops file)" if source is not None and source.suffix != ".skops" else "")
            raise UntrustedArtifactError(exc.path, f"{exc.risk}, and this registry does not "
                                         f"trust pickle-based artifacts; {trust_hint()}{hint}",
                                         risk=exc.risk) from exc
        out().print(f"registered {name} v{version.version} ({fmt}) from {origin}")
        if getattr(model, "fitted", True) is False:  # an adapter that knows it learnt nothing
            status().print(f"warning: {name} v{version.version} has learnt nothing: it "
                           "answers the neutral value (0.5 for a classifier) to every "
                           "request until a trainer publishes a version that learnt "
                           "(headwater train, headwater run); fit it before registering "
                           "to serve it as it is", markup=False)
        if promote_:
            move = registry.promote(name, version.version, alias, actor=who,
                                    reason=reason or "registered by hand")
            out().print(f"{name} {move.alias} → v{move.to_version}"
                        + (f" (was v{move.from_version})" if move.from_version is not None
                           else ""))


@app.command("trust")
def trust(
    ctx: typer.Context,
    reason: ReasonOpt,
    pickle: Annotated[bool, typer.Option(
        "--pickle", help="Artifacts that can run code when loaded: pickle-based formats "
        "(River, scikit-learn without skops) and skops files with types outside skops' "
        "trusted list (tree ensembles).")] = False,
    revoke: Annotated[bool, typer.Option(
        "--revoke", help="Withdraw the opt-in (processes keep what they have loaded).")
    ] = False,
    actor: ActorOpt = None,
) -> None:
    """Opt this registry in, once, to artifacts that can run code when loaded — a promise
    that everyone who can write to it is trusted — or revoke that."""
    if not pickle:
        raise ValidationError("--pickle", "name what to trust: --pickle (artifacts that can "
                              "run code when loaded)")
    who = actor or _default_actor()
    with _open(ctx) as registry:
        before = registry.trust_state("pickle")
        if revoke:
            change = registry.revoke_trust("pickle", actor=who, reason=reason)
        else:
            change = registry.trust("pickle", actor=who, reason=reason)
    if change is None or change == before:
        out().print(f"unchanged: {_trust_text(change)}")
        return
    out().print(_trust_text(change))
    if change.trusted:
        status().print("every process that loads from this registry may now run code from "
                       "its pickle-based artifacts; revoke with `headwater models trust "
                       "--pickle --revoke --reason WHY`")
    else:
        status().print("running processes keep the versions they have loaded; new loads of "
                       "pickle-based artifacts are refused")


def _read(source: Path, trusted: bool, columns: tuple[str, ...] | None) -> Model:
    try:
        return read_model(source, trusted=trusted, features=columns, field="SOURCE")
    except ValidationError as exc:
        if exc.field != "features":
            raise
        raise ValidationError("--features", exc.reason.replace(
            "features=[...]", "--features NAME,NAME,…")) from exc


def _trust_text(change: TrustChange | None) -> str:
    if change is None:
        return "pickle-based artifacts are not trusted by this registry (never granted)"
    what = "granted" if change.trusted else "revoked"
    return (f"pickle-based artifacts are {'' if change.trusted else 'not '}trusted by this "
            f"registry: {what} by {change.actor} at {_when(change.at)}: {change.reason}")


def _params(pairs: list[str]) -> dict[str, Any]:
    """``["alpha=0.1", "hidden=[8, 4]", "optimizer=adam"]`` as values (JSON, else text)."""
    out: dict[str, Any] = {}
    for pair in pairs:
        key, sep, text = pair.partition("=")
        key = key.strip()
        if not sep or not key:
            raise ValidationError("--param", f"expected NAME=VALUE, got {pair!r}")
        if key in out:
            raise ValidationError("--param", f"{key!r} is given twice")
        try:
            out[key] = msgspec.json.decode(text)
        except msgspec.DecodeError:
            out[key] = text
    return out


def _mode(mode: str) -> Mode:
    for known in typing.get_args(Mode):
        if mode == known:
            return cast(Mode, known)
    raise ValidationError("--mode", f"expected auto, artifact or metrics, got {mode!r}")


def _print_reproduction(result: Reproduction) -> None:
    table = Table("check", "recorded", "replayed", "")
    for check in result.checks:
        mark = Text("ok", style="green") if check.ok else Text(
            "differs", style="bold red" if check.decisive else "yellow")
        table.add_row(check.name + ("" if check.decisive else " (informative)"),
                      check.recorded, check.found, mark)
    console = out()
    console.print(f"{result.model} v{result.version}: replayed its training slice into "
                  + (f"v{result.parent}" if result.parent else "a fresh model")
                  + f", compared by {result.mode}")
    console.print(table)
    if result.verdict == "match":
        console.print(Text(f"reproduced: {result.model} v{result.version} comes out the same "
                           f"({result.mode})", style="bold green"))
    elif result.verdict == "unverifiable":
        console.print(Text("cannot verify: the version records no metric that can be "
                           "recomputed; try --mode artifact", style="bold yellow"))
    else:
        console.print(Text(f"MISMATCH: {', '.join(c.name for c in result.failed)} "
                           "differ from the record", style="bold red"))


def draw_tree(tree: LineageTree) -> Tree:
    """The lineage tree as a Rich tree: a version follows its parent, and a branch is
    drawn under the version it branches off."""
    root = Tree(Text(tree.model, style="bold"), guide_style="dim")
    nodes: dict[int, Tree] = {}
    for line in tree.lines():
        parent = root if line.branch_of is None else nodes[line.branch_of]
        for number in line.versions:
            label = _label(tree, number)
            if number == line.versions[0]:
                start = tree.versions[number].parent
                label.append("  (from scratch)" if start is None else
                             f"  (from v{start})", style="dim")
            nodes[number] = parent.add(label)
    return root


def _label(tree: LineageTree, number: int) -> Text:
    version = tree.versions[number]
    label = Text(f"v{number}", style="bold")
    label.append(f"  {version.status}", style=_STATUS_STYLE[version.status])
    label.append(f"  {_when(version.created_at)}")
    if version.lineage.metrics:
        label.append(f"  {_metrics(version.lineage.metrics)}", style="cyan")
    for alias in tree.aliases.get(number, ()):
        label.append(f"  [{alias}]", style="bold green")
    return label


def _print_version(registry: ModelRegistry, record: ModelVersion) -> None:
    console = out()
    lineage = record.lineage
    marks = [a for a, v in registry.aliases(record.model).items() if v == record.version]
    console.print(f"model [bold]{record.model}[/] version [bold]v{record.version}[/]"
                  + (f"  [bold green]{' '.join(marks)}[/]" if marks else ""))
    rows = [
        ("status", record.status + (f": {record.status_reason}" if record.status_reason else "")),
        ("created", _when(record.created_at)),
        ("parent", _number(record.parent) if record.parent else "none (trained from scratch)"),
        ("sha256", record.artifact.sha256),
        ("size", f"{format_count(record.artifact.files)} file(s), "
                 f"{format_count(record.artifact.bytes)} bytes"),
        ("created by", f"{lineage.created_by.trainer} ({lineage.created_by.trigger})"
                       + (f": {lineage.created_by.reason}" if lineage.created_by.reason else "")),
        ("feature set", lineage.feature_set or ""),
        ("code", "" if lineage.code is None else " ".join(filter(None, (
            lineage.code.package, lineage.code.version, lineage.code.git_commit)))),
    ]
    if lineage.training is not None:
        rows.append(("training", _training(record)))
    if lineage.hyperparameters:
        rows.append(("hyper-parameters", ", ".join(
            f"{k}={v}" for k, v in sorted(lineage.hyperparameters.items()))))
    if lineage.metrics:
        rows.append(("metrics", _metrics(lineage.metrics, most=len(lineage.metrics))))
    rows.append(("trust", _trust_text(registry.trust_state("pickle"))
                 + ("" if registry.trusts("pickle") else f"; {trust_hint()}")))
    table = Table.grid(padding=(0, 2))
    for key, value in rows:
        table.add_row(Text(key, style="dim"), Text(value))
    console.print(table)


def _training(record: ModelVersion) -> str:
    training = record.lineage.training
    assert training is not None
    parts = [f"{format_count(training.examples)} examples"]
    for topic in training.topics:
        ranges = ", ".join(f"p{r.partition}:{r.start}..{r.end}" for r in topic.ranges)
        parts.append(f"{topic.topic} [{ranges}]")
    if training.event_time_start is not None or training.event_time_end is not None:
        parts.append(f"event time {_when(training.event_time_start)} .. "
                     f"{_when(training.event_time_end)}")
    if training.examples_sha256:
        parts.append(f"examples sha256 {training.examples_sha256}")
    return "; ".join(parts)


def _version(registry: ModelRegistry, name: str, version: str | None) -> ModelVersion:
    check_model_name(name, field="NAME")
    if version is None:
        latest = next((m.latest for m in registry.models() if m.name == name), None)
        if latest is None:
            raise UnknownModelError(name)
        return registry.get(name, latest)
    return registry.get(name, parse_ref(version, field="VERSION"))


def _metrics(metrics: dict[str, float], most: int = _SHOWN_METRICS) -> str:
    shown = sorted(metrics.items())[:most]
    more = f" (+{len(metrics) - most})" if len(metrics) > most else ""
    return " ".join(f"{k}={v:.4g}" for k, v in shown) + more


def _when(us: int | None) -> str:
    if us is None:
        return "…"
    return from_micros(us).strftime("%Y-%m-%d %H:%M:%SZ")


def _number(version: int | None) -> str:
    return "-" if version is None else f"v{version}"


def _default_actor() -> str:
    try:
        import pwd

        return f"{pwd.getpwuid(os.getuid()).pw_name} (cli)"
    except (ImportError, KeyError):
        return "cli"
