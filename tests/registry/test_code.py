"""The code version: a package's version and its git commit, read from ``.git`` files."""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

from headwater.registry import detect_code_version
from headwater.registry.code import git_commit

SHA = "0123456789abcdef0123456789abcdef01234567"
OTHER = "89abcdef0123456789abcdef0123456789abcdef"


def repo(root: Path, head: str) -> Path:
    (root / ".git" / "refs" / "heads").mkdir(parents=True)
    (root / ".git" / "HEAD").write_text(head + "\n")
    (root / "src" / "pkg").mkdir(parents=True)
    return root / "src" / "pkg"


def test_a_branch_with_a_loose_ref(tmp_path: Path) -> None:
    inside = repo(tmp_path, "ref: refs/heads/main")
    (tmp_path / ".git" / "refs" / "heads" / "main").write_text(SHA + "\n")
    assert git_commit(inside) == SHA


def test_a_branch_in_packed_refs(tmp_path: Path) -> None:
    inside = repo(tmp_path, "ref: refs/heads/feature/x")
    (tmp_path / ".git" / "packed-refs").write_text(
        f"# pack-refs with: peeled fully-peeled sorted\n{OTHER} refs/heads/main\n"
        f"{SHA} refs/heads/feature/x\n^{OTHER}\n")
    assert git_commit(inside) == SHA


def test_a_detached_head(tmp_path: Path) -> None:
    assert git_commit(repo(tmp_path, SHA)) == SHA


def test_a_branch_without_commits_and_garbage(tmp_path: Path) -> None:
    assert git_commit(repo(tmp_path / "a", "ref: refs/heads/main")) is None
    assert git_commit(repo(tmp_path / "b", "not a commit")) is None


def test_a_worktree_git_file_and_commondir(tmp_path: Path) -> None:
    main = tmp_path / "main"
    repo(main, "ref: refs/heads/main")
    (main / ".git" / "refs" / "heads" / "topic").write_text(SHA)
    worktree_git = main / ".git" / "worktrees" / "wt"
    worktree_git.mkdir(parents=True)
    (worktree_git / "HEAD").write_text("ref: refs/heads/topic\n")
    (worktree_git / "commondir").write_text("../..\n")
    worktree = tmp_path / "wt"
    worktree.mkdir()
    (worktree / ".git").write_text(f"gitdir: {worktree_git}\n")
    assert git_commit(worktree) == SHA


def test_no_checkout_and_installed_packages(tmp_path: Path) -> None:
    assert git_commit(tmp_path / "nowhere") is None
    inside = repo(tmp_path, SHA)
    installed = inside / "lib" / "site-packages" / "pkg"
    installed.mkdir(parents=True)
    assert git_commit(installed) is None


def test_detect_code_version() -> None:
    code = detect_code_version("headwater")
    assert code.version == importlib.metadata.version("headwater")
    missing = detect_code_version("no_such_package_here")
    assert (missing.version, missing.git_commit) == (None, None)


def test_detect_code_version_at_a_path(tmp_path: Path) -> None:
    assert detect_code_version("headwater", path=repo(tmp_path, SHA)).git_commit == SHA
