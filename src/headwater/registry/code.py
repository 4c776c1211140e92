"""Which code trained a version: a package's version and, when it runs from a git
checkout, the commit — found by reading ``.git`` files, without running ``git``.

The commit is the one ``HEAD`` names: a detached ``HEAD`` holds it; otherwise ``HEAD``
names a branch whose commit is in ``refs/heads/…`` or in ``packed-refs``. A ``.git`` file
(``gitdir: …``, as worktrees and submodules have) is followed, and so is a worktree's
``commondir``. Anything missing or unreadable gives ``None``: a package installed into
``site-packages`` has no commit of its own. Uncommitted changes are not detected.

>>> code = detect_code_version("headwater")
>>> code.package, code.version is not None
('headwater', True)
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import re
from pathlib import Path
from typing import Final

from headwater.registry.lineage import CodeVersion

__all__ = ["detect_code_version", "git_commit"]

_SHA: Final = re.compile(r"[0-9a-f]{40}([0-9a-f]{24})?")
_INSTALLED: Final = frozenset({"site-packages", "dist-packages"})


def detect_code_version(package: str = "headwater", *, path: Path | None = None) -> CodeVersion:
    """The installed version of ``package`` and the git commit of the checkout it runs
    from (or of the checkout holding ``path``, when given)."""
    try:
        version: str | None = importlib.metadata.version(package)
    except importlib.metadata.PackageNotFoundError:
        version = None
    if path is None:
        path = _source_of(package)
    return CodeVersion(package=package, version=version,
                       git_commit=None if path is None else git_commit(path))


def git_commit(path: Path) -> str | None:
    """The commit checked out in the git working tree holding ``path``, or ``None``."""
    try:
        start = path.resolve()
        for directory in (start, *start.parents):
            if directory.name in _INSTALLED:
                return None
            dotgit = directory / ".git"
            if dotgit.is_dir():
                return _head_commit(dotgit)
            if dotgit.is_file():
                text = dotgit.read_text(encoding="utf-8").strip()
                if not text.startswith("gitdir:"):
                    return None
                return _head_commit((directory / text[len("gitdir:"):].strip()).resolve())
    except (OSError, UnicodeDecodeError):
        return None
    return None


def _source_of(package: str) -> Path | None:
    try:
        spec = importlib.util.find_spec(package)
    except (ImportError, ValueError):
        return None
    if spec is None or spec.origin is None:
        return None
    return Path(spec.origin).parent


def _head_commit(gitdir: Path) -> str | None:
    head = (gitdir / "HEAD").read_text(encoding="utf-8").strip()
    if not head.startswith("ref:"):
        return head if _SHA.fullmatch(head) else None
    ref = head[len("ref:"):].strip()
    common = gitdir
    if (gitdir / "commondir").is_file():
        common = (gitdir / (gitdir / "commondir").read_text(encoding="utf-8").strip()).resolve()
    for base in (gitdir, common):
        loose = base / ref
        if loose.is_file():
            value = loose.read_text(encoding="utf-8").strip()
            return value if _SHA.fullmatch(value) else None
    packed = common / "packed-refs"
    if packed.is_file():
        for line in packed.read_text(encoding="utf-8").splitlines():
            sha, _, name = line.partition(" ")
            if name.strip() == ref and _SHA.fullmatch(sha):
                return sha
    return None  # a branch with no commit yet
