"""The README runs as written: every block, in order, in an empty directory
(:mod:`tests.readme` has the rules), and every ``headwater`` command named in its prose
exists with the options it names."""

from __future__ import annotations

import shlex
import sys
import textwrap
import time
from pathlib import Path
from typing import Any

import pytest
from markdown_it import MarkdownIt
from typer.main import get_command

from headwater.cli import app
from tests.models.adapters import require
from tests.readme import Block, ReadmeError, Stop, Tour, steps

README = Path(__file__).resolve().parent.parent / "README.md"


@pytest.mark.slow
@pytest.mark.timeout(1200)
def test_the_readme_runs_as_written(tmp_path: Path) -> None:
    for module in ("uvicorn", "pandas", "river"):  # the tour's extras: serve, pandas, river
        require(module)
    tour_dir = tmp_path / "tour"
    tour_dir.mkdir()
    tour = Tour(tour_dir)
    try:
        for step in steps(README.read_text()):
            tour.run(step)
    finally:
        tour.close()
    if tour.skipped:
        pytest.skip("every other block ran; skipped: " + "; ".join(tour.skipped))


def _inline_commands(text: str) -> list[str]:
    found = []
    for token in MarkdownIt("commonmark").parse(text):
        for child in token.children or []:
            if child.type == "code_inline" and child.content.startswith("headwater "):
                found.append(child.content)
    return found


def _check_command(line: str) -> None:
    """The subcommands exist and take the options named (nothing is run)."""
    words = shlex.split(line)[1:]
    command: Any = get_command(app)  # Typer's own copy of click: duck-typed
    path = ["headwater"]
    for i, word in enumerate(words):
        group: dict[str, Any] | None = getattr(command, "commands", None)
        if word.startswith("-"):
            name = word.split("=")[0]
            known = {o for p in command.params for o in (*p.opts, *p.secondary_opts)}
            assert name in known, f"{line!r}: {' '.join(path)} has no option {name}"
        elif group is not None and word in group:
            command = group[word]
            path.append(word)
        elif group is not None and not (i and words[i - 1].startswith("-")):
            raise AssertionError(f"{line!r}: {' '.join(path)} has no command {word!r}")


def test_commands_named_in_the_prose_exist() -> None:
    commands = _inline_commands(README.read_text())
    assert len(commands) >= 10
    for line in commands:
        _check_command(line)
    with pytest.raises(AssertionError, match="has no command 'rollin'"):
        _check_command("headwater eval rollin fraud 3")
    with pytest.raises(AssertionError, match="has no option --tokens"):
        _check_command("headwater eval rollout fraud 3 --tokens token")


def test_scripts_named_in_the_prose_exist() -> None:
    root = README.parent
    for line in _inline_commands(README.read_text().replace("`python ", "`headwater ")):
        if line.startswith("headwater benchmarks/"):
            assert (root / line.split()[1]).is_file(), line


# -- the runner itself, on small documents -----------------------------------------------


def run(tmp_path: Path, text: str) -> Tour:
    tour = Tour(tmp_path)
    try:
        for step in steps(textwrap.dedent(text)):
            tour.run(step)
    finally:
        tour.close()
    return tour


def test_blocks_share_a_directory_and_python_blocks_a_namespace(tmp_path: Path) -> None:
    run(tmp_path, """
        <!-- readme: file numbers.txt -->
        ```text
        1 2 3
        ```

        ```bash
        echo "$(wc -w < numbers.txt)" > count.txt
        ```

        ```python
        count = int(open("count.txt").read())
        ```

        ```python
        count + 1        # 4 — a checked value
        "prose"          # not a literal: a note, unchecked
        ```
    """)


def test_a_value_the_readme_states_is_checked(tmp_path: Path) -> None:
    with pytest.raises(ReadmeError, match=r"line 5: the README says 5, the code gives 4"):
        run(tmp_path, """

            ```python
            x = 2
            x + 2     # 5
            ```
        """)


def test_a_failing_command_fails_with_its_line_and_output(tmp_path: Path) -> None:
    with pytest.raises(ReadmeError, match=r"(?s)line 2: exit code 2.*no such topic|unknown"):
        run(tmp_path, """
            ```bash
            headwater topics describe nothing
            ```
        """)


def test_setup_and_output_blocks_are_not_run_and_others_must_say_so(tmp_path: Path) -> None:
    run(tmp_path, """
        <!-- readme: setup -->
        ```bash
        exit 3
        ```

        <!-- readme: output -->
        ```
        a tree
        ```
    """)
    with pytest.raises(ReadmeError, match="must be marked output or setup"):
        steps("```\na tree\n```\n")
    with pytest.raises(ReadmeError, match="unknown directive 'backgroud'"):
        steps("<!-- readme: backgroud x -->\n```bash\nsleep 1\n```\n")


def test_background_commands_run_until_stopped(tmp_path: Path) -> None:
    tour = Tour(tmp_path)
    started = time.monotonic()
    for step in steps(textwrap.dedent("""
        <!-- readme: background ticker -->
        ```bash
        trap 'echo stopped > stopped.txt; exit 0' INT
        while true; do echo tick >> ticks.txt; sleep 0.05; done
        ```

        ```bash
        while [ ! -s ticks.txt ]; do sleep 0.05; done
        ```

        <!-- readme: stop ticker -->
    """)):
        tour.run(step)
    assert (tmp_path / "stopped.txt").read_text() == "stopped\n"
    assert not tour.background
    assert time.monotonic() - started < 15  # stopped by Ctrl-C, not by the grace period
    with pytest.raises(ReadmeError, match="nothing named 'ticker'"):
        tour.run(Stop(9, "ticker"))


def test_a_background_command_must_become_ready(tmp_path: Path) -> None:
    with pytest.raises(ReadmeError, match=r"stopped \(exit code 1\) before http"):
        run(tmp_path, """
            <!-- readme: background server; ready http://127.0.0.1:9/ready -->
            ```bash
            exit 1
            ```
        """)


def test_blocks_needing_absent_services_are_skipped_with_the_reason(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("tests.readme._reachable", lambda host, port: False)
    monkeypatch.delenv("HEADWATER_REQUIRE_SERVICES", raising=False)
    block = Block(3, "bash", "exit 1\n", {"services": "redis"})
    tour = Tour(tmp_path)
    tour.run(block)
    assert tour.skipped == ["line 3: needs redis"]
    monkeypatch.setenv("HEADWATER_REQUIRE_SERVICES", "1")
    with pytest.raises(ReadmeError, match="needs redis, required"):
        Tour(tmp_path).run(block)


def test_commands_are_this_interpreters_and_see_no_headwater_settings(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HEADWATER_LOG_URL", "memory://")
    run(tmp_path, """
        ```bash
        test -z "${HEADWATER_LOG_URL:-}"
        python -c "import sys; print(sys.executable)" > python.txt
        ```
    """)
    assert (tmp_path / "python.txt").read_text().strip() == sys.executable
