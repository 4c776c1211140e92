"""The console's HTTP interface: a lean ASGI app (no framework), pages rendered on the
server with Jinja2, live refresh by polling.

``GET /topics``, ``/features``, ``/models``, ``/models/<name>/<version>``, ``/serving``
and ``/evaluation`` are pages; ``GET /api/<page>`` (the same path under ``/api``)
answers ``{"html": ..., "series": ..., "data": ...}``: the page's content rendered
afresh, the data of its charts, which the page's script swaps in every couple of
seconds, and the values the page shows (for scripts).
``GET /report?path=...`` serves one HTML report the evaluation page lists (and nothing
else), ``GET /static/<file>`` the script, the style sheet and the vendored uPlot. Every
asset ships in the package: the console works offline.

Reads of the log, the model store and the online store run one at a time in one worker
thread, beside the event loop: the handles are not shared between threads, and a page
never holds the loop. The console only reads; it never writes to any of them.
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
from collections.abc import Awaitable, Callable, MutableMapping
from concurrent.futures import ThreadPoolExecutor
from importlib import resources
from typing import Any, Final
from urllib.parse import parse_qs, unquote

from headwater.console import views
from headwater.errors import HeadwaterError, MissingExtraError

try:
    import jinja2
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingExtraError("The console", "ui", "jinja2") from exc

__all__ = ["PAGES", "ConsoleApp"]

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

#: The pages, in the order of the navigation bar: path -> title.
PAGES: Final = {"topics": "Topics", "features": "Features", "models": "Models",
                "serving": "Serving", "evaluation": "Evaluation"}
_HTML: Final = b"text/html; charset=utf-8"
_JSON: Final = b"application/json"
_REFRESH_MS: Final = 2000


class ConsoleApp:
    """The console over ``sources``: an ASGI application."""

    def __init__(self, sources: views.Sources, *, refresh_ms: int = _REFRESH_MS) -> None:
        self.sources = sources
        self.refresh_ms = refresh_ms
        self.templates = jinja2.Environment(
            loader=jinja2.PackageLoader("headwater.console", "templates"),
            autoescape=True, undefined=jinja2.StrictUndefined)
        self.static = resources.files("headwater.console") / "static"
        self._reader = ThreadPoolExecutor(max_workers=1, thread_name_prefix="console")

    def close(self) -> None:
        self._reader.shutdown(wait=True)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            while (await receive())["type"] != "lifespan.shutdown":
                await send({"type": "lifespan.startup.complete"})
            await send({"type": "lifespan.shutdown.complete"})
            return
        if scope["type"] != "http":
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, b"text/plain", b"the console only reads: GET\n",
                           [(b"allow", b"GET, HEAD")])
            return
        status, kind, body = await self._route(scope["path"], scope.get("query_string", b""))
        await _respond(send, status, kind, b"" if scope["method"] == "HEAD" else body)

    async def _route(self, path: str, query: bytes) -> tuple[int, bytes, bytes]:
        parts = [unquote(p) for p in path.strip("/").split("/") if p]
        if not parts:
            return 302, b"text/plain", b"/topics"
        if parts[0] == "static" and len(parts) == 2:
            return self._asset(parts[1])
        if parts[0] == "report":
            return await self._read(self._report, parse_qs(query.decode()).get("path", [""])[0])
        live = parts[0] == "api"
        page = parts[1:] if live else parts
        if not page or page[0] not in PAGES or (len(page) > 1 and (
                page[0] != "models" or len(page) != 3 or not page[2].isdigit())):
            return 404, _HTML, self._render("missing.html", {"path": path}, title="Not found")
        return await self._read(self._page, page, live)

    async def _read(self, build: Callable[..., tuple[int, bytes, bytes]], *args: Any
                    ) -> tuple[int, bytes, bytes]:
        return await asyncio.get_running_loop().run_in_executor(self._reader, build, *args)

    def _page(self, page: list[str], live: bool) -> tuple[int, bytes, bytes]:
        try:
            if len(page) == 3:
                data, template = views.version(self.sources, page[1], int(page[2])), "version"
            else:
                template = page[0]
                data = getattr(views, template)(self.sources)
        except HeadwaterError as exc:
            return 404, _HTML, self._render("missing.html", {"path": "/".join(page),
                                                             "reason": str(exc)},
                                            title="Not found")
        fragment = self.templates.get_template(f"{template}.html").render(data=data)
        series = data.get("series", {})
        if live:
            return 200, _JSON, json.dumps({"html": fragment, "series": series, "data": data},
                                          default=str).encode()
        return 200, _HTML, self._wrap(fragment, series, page="/".join(page),
                                      title=PAGES.get(page[0], page[0]))

    def _render(self, template: str, data: dict[str, Any], *, title: str) -> bytes:
        fragment = self.templates.get_template(template).render(data=data)
        return self._wrap(fragment, {}, page="", title=title)

    def _wrap(self, fragment: str, series: dict[str, Any], *, page: str, title: str) -> bytes:
        return self.templates.get_template("base.html").render(
            content=fragment, series=json.dumps(series), page=page, title=title,
            pages=PAGES, current=page.split("/")[0], refresh_ms=self.refresh_ms).encode()

    def _report(self, path: str) -> tuple[int, bytes, bytes]:
        found = views.report_file(self.sources, path)
        if found is None:
            return 404, _HTML, self._render("missing.html", {"path": path,
                                                             "reason": "not a listed report"},
                                            title="Not found")
        return 200, _HTML, found.read_bytes()

    def _asset(self, name: str) -> tuple[int, bytes, bytes]:
        asset = self.static / name
        if "/" in name or name.startswith(".") or not asset.is_file():
            return 404, b"text/plain", b"no such asset\n"
        kind = mimetypes.guess_type(name)[0] or "application/octet-stream"
        return 200, kind.encode(), asset.read_bytes()


async def _respond(send: Send, status: int, kind: bytes, body: bytes,
                   extra: list[tuple[bytes, bytes]] | None = None) -> None:
    headers = [(b"content-type", kind), (b"content-length", str(len(body)).encode()),
               (b"cache-control", b"no-store"), *(extra or [])]
    if status == 302:
        headers = [(b"location", body), (b"content-length", b"0")]
        body = b""
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
