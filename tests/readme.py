"""Running a Markdown document's code blocks in order, as a reader would.

The README must run as written; :func:`steps` reads its blocks (with markdown-it-py, the
CommonMark parser) and :class:`Tour` runs them in one empty directory:

- ``python`` blocks run in one namespace, in that directory. A top-level expression
  followed by a comment that begins with a Python literal states its value and is
  checked: ``result.accepted  # 1`` or ``frame.empty  # False — why``. A comment that is
  not a literal (``# a RecordBatch``) is prose.
- ``bash`` blocks run with ``bash -e -o pipefail``: each command is a separate process
  (``headwater`` is this interpreter's), no ``HEADWATER_*`` variable is inherited, and a
  block's variables do not carry over to the next one.

An HTML comment just before a block (invisible on the rendered page) says how to treat
it, ``;`` between directives:

- ``<!-- readme: setup -->``: installation commands, run by CI itself, not here;
- ``<!-- readme: output -->``: shows output or a layout, not a command;
- ``<!-- readme: file NAME -->``: the block (in any language) is the content of the file
  NAME, written, not run;
- ``<!-- readme: background NAME; ready URL -->``: a command that keeps running (a
  server, an engine), started in its own process group; ``ready URL`` waits until the
  URL answers 200. ``<!-- readme: stop NAME -->`` (anywhere) stops it with SIGINT, as
  Ctrl-C would, then SIGKILL after a grace period; whatever is left is stopped at the
  end;
- ``<!-- readme: services redis postgres kafka -->``: the block needs these servers; it
  is skipped with the reason when one is absent, a failure under
  ``HEADWATER_REQUIRE_SERVICES=1``.

A block in another language, or with no language, must say ``output`` or ``setup``.
"""

from __future__ import annotations

import ast
import io
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tokenize
import urllib.error
import urllib.request
from collections.abc import Iterator, Mapping
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Final

from markdown_it import MarkdownIt

from headwater.log import Log

__all__ = ["Block", "Stop", "Tour", "steps"]

_DIRECTIVE: Final = re.compile(r"^\s*<!--\s*readme:\s*(.*?)\s*-->\s*$", re.DOTALL)
_RUN: Final = ("python", "bash")
_KINDS: Final = ("setup", "output", "file", "background", "services", "stop")
_SERVICES: Final = {"redis": ("127.0.0.1", 6379), "postgres": ("127.0.0.1", 5432),
                    "kafka": ("127.0.0.1", 9092)}
_BLOCK_TIMEOUT_S: Final = 600.0
_READY_TIMEOUT_S: Final = 90.0
_STOP_GRACE_S: Final = 20.0


class ReadmeError(AssertionError):
    """A block failed, or the document breaks the rules above; names the line."""


@dataclass(frozen=True)
class Block:
    """A fenced code block and the directives before it."""

    line: int  # 1-based line of the opening fence
    language: str
    code: str
    directives: Mapping[str, str] = field(default_factory=dict)


@dataclass(frozen=True)
class Stop:
    """``<!-- readme: stop NAME -->``."""

    line: int
    name: str


def _directives(text: str, line: int) -> dict[str, str] | None:
    match = _DIRECTIVE.match(text)
    if match is None:
        return None
    found: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in match.group(1).split(";"))):
        kind, _, argument = part.partition(" ")
        if kind not in (*_KINDS, "ready"):
            raise ReadmeError(f"line {line}: unknown directive {kind!r}")
        found[kind] = argument.strip()
    return found


def steps(text: str) -> list[Block | Stop]:
    """The document's blocks and stops, in order, checked against the rules."""
    found: list[Block | Stop] = []
    pending: dict[str, str] = {}
    for token in MarkdownIt("commonmark").parse(text):
        line = (token.map[0] + 1) if token.map else 0
        if token.type == "html_block":
            directives = _directives(token.content, line)
            if directives is None:
                continue
            if set(directives) == {"stop"}:
                found.append(Stop(line, directives["stop"]))
                continue
            pending = directives
        elif token.type in ("fence", "code_block"):
            language = token.info.split()[0] if token.info.strip() else ""
            block = Block(line, language, token.content, pending)
            pending = {}
            _check(block)
            found.append(block)
        elif pending and token.type.endswith("_open"):
            raise ReadmeError(f"line {line}: a readme directive must come just before a block")
    return found


def _check(block: Block) -> None:
    d = block.directives
    if "setup" in d or "output" in d:
        return
    if "file" in d:
        if not d["file"]:
            raise ReadmeError(f"line {block.line}: file needs a name")
        return
    if block.language not in _RUN:
        raise ReadmeError(f"line {block.line}: a {block.language or 'plain'} block must be "
                          "marked output or setup (or be python or bash)")
    if "background" in d and (block.language != "bash" or not d["background"]):
        raise ReadmeError(f"line {block.line}: background needs a name and a bash block")


def _require_services() -> bool:
    return os.environ.get("HEADWATER_REQUIRE_SERVICES", "") not in ("", "0", "false")


def _reachable(host: str, port: int) -> bool:
    with suppress(OSError), socket.create_connection((host, port), timeout=1):
        return True
    return False


@dataclass
class _Background:
    name: str
    process: subprocess.Popen[bytes]
    output: Path
    line: int


class _Checker(ast.NodeTransformer):
    """Turns ``expr  # literal`` statements into checks of the value."""

    def __init__(self, comments: Mapping[int, str]) -> None:
        self.comments = comments

    def visit_Module(self, node: ast.Module) -> ast.Module:  # only the top level
        body: list[ast.stmt] = []
        for stmt in node.body:
            comment = self.comments.get(stmt.end_lineno or 0)
            expected = _literal(comment) if comment else None
            if expected is None or not isinstance(stmt, ast.Expr):
                body.append(stmt)
                continue
            call = ast.Call(ast.Name("__readme_check__", ast.Load()),
                            [stmt.value, ast.Constant(expected), ast.Constant(stmt.lineno)], [])
            body.append(ast.copy_location(ast.Expr(call), stmt))
        node.body = body
        return ast.fix_missing_locations(node)


def _literal(comment: str) -> str | None:
    """The text of the literal a comment begins with (before `` — ``), if it is one."""
    text = comment.lstrip("#").strip().split(" — ")[0].strip()
    try:
        ast.literal_eval(text)
    except (ValueError, SyntaxError, TypeError, MemoryError, RecursionError):
        return None
    return text


def _comments(code: str) -> dict[int, str]:
    found = {}
    for token in tokenize.generate_tokens(io.StringIO(code).readline):
        if token.type == tokenize.COMMENT:
            found[token.start[0]] = token.string
    return found


class Tour:
    """Runs steps in ``directory``, keeping background commands until :meth:`close`."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self.namespace: dict[str, Any] = {"__name__": "__readme__"}
        self.background: dict[str, _Background] = {}
        self.skipped: list[str] = []
        bin_dir = str(Path(sys.executable).parent)
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("HEADWATER_")}
        self.env["PATH"] = bin_dir + os.pathsep + self.env.get("PATH", "")

    def run(self, step: Block | Stop) -> None:
        if isinstance(step, Stop):
            self.stop(step.name, step.line)
            return
        d = step.directives
        if "setup" in d or "output" in d:
            return
        missing = [s for s in d.get("services", "").split() if not _reachable(*_SERVICES[s])]
        if missing:
            reason = f"line {step.line}: needs {', '.join(missing)}"
            if _require_services():
                raise ReadmeError(f"{reason}, required by HEADWATER_REQUIRE_SERVICES")
            self.skipped.append(reason)
            return
        if "file" in d:
            (self.directory / d["file"]).write_text(step.code)
        elif "background" in d:
            self._start(step, d["background"], d.get("ready"))
        elif step.language == "python":
            self._python(step)
        else:
            self._bash(step)

    def _bash(self, block: Block) -> None:
        try:
            done = subprocess.run(["bash", "-e", "-o", "pipefail", "-c", block.code],
                                  cwd=self.directory, env=self.env, capture_output=True,
                                  text=True, timeout=_BLOCK_TIMEOUT_S, check=False)
        except subprocess.TimeoutExpired as exc:
            raise ReadmeError(f"line {block.line}: still running after {exc.timeout:.0f} s "
                              "(a long-running command needs the background directive)"
                              ) from None
        if done.returncode != 0:
            raise ReadmeError(f"line {block.line}: exit code {done.returncode}\n"
                              f"--- stdout\n{done.stdout[-6000:]}\n"
                              f"--- stderr\n{done.stderr[-6000:]}")

    def _python(self, block: Block) -> None:
        tree = _Checker(_comments(block.code)).visit(ast.parse(block.code))
        code = compile(tree, f"README.md:{block.line}", "exec")

        def check(value: Any, text: str, line: int) -> None:
            if value != ast.literal_eval(text):
                raise ReadmeError(f"line {block.line + line}: the README says {text}, "
                                  f"the code gives {value!r}")

        self.namespace["__readme_check__"] = check
        with self._inside():
            try:
                exec(code, self.namespace)
            except ReadmeError:
                raise
            except Exception as exc:
                raise ReadmeError(f"line {block.line}: {type(exc).__name__}: {exc}") from exc

    @contextmanager
    def _inside(self) -> Iterator[None]:
        """The tour's directory and environment, for a Python block."""
        before_dir, before_env = Path.cwd(), dict(os.environ)
        os.chdir(self.directory)
        os.environ.clear()
        os.environ.update(self.env)
        try:
            yield
        finally:
            os.chdir(before_dir)
            os.environ.clear()
            os.environ.update(before_env)

    def _start(self, block: Block, name: str, ready: str | None) -> None:
        if name in self.background:
            raise ReadmeError(f"line {block.line}: {name!r} is already running")
        if ready is not None and _answers(ready):
            raise ReadmeError(f"line {block.line}: something else already answers at {ready}")
        output = self.directory.parent / f"readme-{name}-{block.line}.out"
        with output.open("wb") as sink:
            process = subprocess.Popen(["bash", "-e", "-o", "pipefail", "-c", block.code],
                                       cwd=self.directory, env=self.env, stdout=sink,
                                       stderr=subprocess.STDOUT, start_new_session=True)
        job = _Background(name, process, output, block.line)
        self.background[name] = job
        if ready is None:
            return
        deadline = time.monotonic() + _READY_TIMEOUT_S
        while not _answers(ready):
            if process.poll() is not None:
                raise ReadmeError(f"line {block.line}: {name!r} stopped (exit code "
                                  f"{process.returncode}) before {ready} answered\n"
                                  f"{output.read_text(errors='replace')[-6000:]}")
            if time.monotonic() > deadline:
                raise ReadmeError(f"line {block.line}: {ready} did not answer within "
                                  f"{_READY_TIMEOUT_S:.0f} s")
            time.sleep(0.2)

    def stop(self, name: str, line: int) -> None:
        job = self.background.pop(name, None)
        if job is None:
            raise ReadmeError(f"line {line}: nothing named {name!r} runs in the background")
        if job.process.poll() is not None:
            raise ReadmeError(f"line {line}: {name!r} (line {job.line}) had stopped by itself "
                              f"with exit code {job.process.returncode}\n"
                              f"{job.output.read_text(errors='replace')[-6000:]}")
        _interrupt(job.process)

    def close(self) -> None:
        """Stop whatever still runs in the background; close the logs the blocks opened."""
        for job in self.background.values():
            if job.process.poll() is None:
                _interrupt(job.process)
        self.background.clear()
        for value in self.namespace.values():
            if isinstance(value, Log):
                value.close()


def _interrupt(process: subprocess.Popen[bytes]) -> None:
    """Ctrl-C to the whole process group; SIGKILL to what is left after a grace period."""
    group = process.pid  # the leader of its own session and group
    with suppress(ProcessLookupError):
        os.killpg(group, signal.SIGINT)
    deadline = time.monotonic() + _STOP_GRACE_S
    while _alive(group, process) and time.monotonic() < deadline:
        time.sleep(0.1)
    if _alive(group, process):
        with suppress(ProcessLookupError):
            os.killpg(group, signal.SIGKILL)
    process.wait()


def _alive(group: int, process: subprocess.Popen[bytes]) -> bool:
    process.poll()  # reap the leader, so that a finished group counts as gone
    try:
        os.killpg(group, 0)
    except ProcessLookupError:
        return False
    return True


def _answers(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=2) as response:
            return bool(response.status == 200)
    except (urllib.error.URLError, OSError):
        return False
