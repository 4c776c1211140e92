"""``headwater ui``: the console, a local web page that shows the loop live.

It reads the log (the global ``--log``), the model store (``--registry``), the online
store (``--online``), the prediction server's metrics (``--server``), the other
components' metrics (``--metrics URL``, repeatable), the project's feature sets
(``--project``) and the HTML reports under ``--reports``; it writes to none of them.
Pages refresh every ``--refresh-ms``. See :mod:`headwater.console`.
"""

from __future__ import annotations

from contextlib import ExitStack
from pathlib import Path
from typing import Annotated

import typer

from headwater.cli.common import state_of, status
from headwater.cli.signals import stop_requested
from headwater.errors import ValidationError
from headwater.features.project import load_project
from headwater.registry import open_registry
from headwater.store.online import open_online_store
from headwater.time import SystemClock

__all__ = ["ui"]


def ui(
    ctx: typer.Context,
    host: Annotated[str, typer.Option(help="The address to bind.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(help="The port to bind.")] = 8700,
    registry: Annotated[str | None, typer.Option(
        "--registry", metavar="LOCATION", help="The model store. Default: "
        "$HEADWATER_REGISTRY_URL or <$HEADWATER_HOME or .headwater>/registry.")] = None,
    artifacts: Annotated[str | None, typer.Option(
        "--artifacts", metavar="LOCATION", help="Where the artifacts are. Default: "
        "$HEADWATER_ARTIFACTS_URL or <registry>/artifacts.")] = None,
    online: Annotated[str | None, typer.Option(
        "--online", metavar="LOCATION", help="The online store: a directory or redis://…. "
        "Default: $HEADWATER_ONLINE_URL or <$HEADWATER_HOME or .headwater>/online.")] = None,
    server: Annotated[str | None, typer.Option(
        "--server", metavar="URL", help="The prediction server whose metrics and policy "
        "the Serving page shows ('none' for no server).")] = "http://127.0.0.1:8000",
    project: Annotated[str | None, typer.Option(
        "--project", metavar="FILE", help="The module of definitions whose feature sets "
        "the Features page shows. Default: $HEADWATER_PROJECT or features.py, if present.")
    ] = None,
    reports: Annotated[list[Path] | None, typer.Option(
        "--reports", metavar="DIR", help="A directory of HTML reports (and its "
        "subdirectories) for the Evaluation page; repeatable. Default: the home and the "
        "current directory.")] = None,
    metrics: Annotated[list[str] | None, typer.Option(
        "--metrics", metavar="URL", help="A component's metrics (features run, labels run or "
        "train with --metrics-port), e.g. http://127.0.0.1:9101/metrics; repeatable.")
    ] = None,
    refresh_ms: Annotated[int, typer.Option(
        "--refresh-ms", min=0, help="How often the pages refresh (0: never).")] = 2000,
) -> None:
    """Serve the console: topics, features, models, serving and evaluation, live."""
    import uvicorn

    from headwater.console import ConsoleApp, Sources

    state = state_of(ctx)
    settings = state.settings
    chosen = project or settings.project
    if project is not None and not Path(project).is_file():
        raise ValidationError("--project", f"no such file: {project}")
    feature_sets = load_project(chosen).feature_sets if Path(chosen).is_file() else []
    if server is not None and server.lower() == "none":
        server = None
    if server is not None and not server.startswith(("http://", "https://")):
        raise ValidationError("--server", f"expected an http:// or https:// URL, got {server!r}")
    for url in metrics or []:
        if not url.startswith(("http://", "https://")):
            raise ValidationError("--metrics", f"expected an http:// or https:// URL, got "
                                  f"{url!r}")
    folders = reports or list(dict.fromkeys([Path(settings.home), Path()]))
    with ExitStack() as stack:
        log = stack.enter_context(state.open_log())
        models = stack.enter_context(open_registry(registry, artifacts=artifacts,
                                                   settings=settings))
        location = online or settings.online_location
        store = None
        if "://" in location or Path(location).is_dir():
            store = open_online_store(location, settings=settings, read_only=True)
            stack.callback(store.close)
        app = ConsoleApp(Sources(log=log, registry=models, clock=SystemClock(), online=store,
                                 feature_sets=feature_sets,
                                 server=server.rstrip("/") if server else None,
                                 reports=folders, components=list(metrics or [])),
                         refresh_ms=refresh_ms)
        stack.callback(app.close)
        config = uvicorn.Config(app, host=host, port=port, log_level="warning",
                                access_log=False, lifespan="on")
        status().print(f"console on http://{host}:{port} (Ctrl-C stops it)")
        with stop_requested():
            uvicorn.Server(config).run()
