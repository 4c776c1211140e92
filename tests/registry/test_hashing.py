"""The artifact hash follows its written definition, and only content counts."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

from hypothesis import given
from hypothesis import strategies as st

from headwater.registry import hash_directory
from headwater.registry.hashing import (
    FileEntry,
    artifact_of,
    describe_changes,
    manifest_bytes,
    parse_manifest,
)

#: The hash of the tree written by ``write_sample``; pinned so a change to the
#: definition cannot pass unnoticed (it would orphan every stored artifact).
SAMPLE_SHA256 = "0c3bf7ced1ca80d61013d9dd6fe034235e7cda1f6b8d8d6ae6b7c8b158e2efa4"


def write_sample(root: Path) -> None:
    files = {"b.bin": b"\x00" * 10, "a/b.txt": b"x", "a-b.txt": b"", "é/n.txt": b"caf\xc3\xa9"}
    for rel, data in files.items():
        (root / rel).parent.mkdir(parents=True, exist_ok=True)
        (root / rel).write_bytes(data)
    (root / "empty-dir").mkdir()


def by_the_definition(root: Path) -> str:
    """The definition in headwater/registry/hashing.py, written out again independently."""
    paths = sorted(p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file())
    paths.sort(key=lambda p: p.encode("utf-8"))
    manifest = b"headwater-artifact/1\n"
    for rel in paths:
        data = (root / rel).read_bytes()
        manifest += f"{hashlib.sha256(data).hexdigest()} {len(data)} {rel}\n".encode()
    return hashlib.sha256(manifest).hexdigest()


def test_the_hash_is_the_written_definition(tmp_path: Path) -> None:
    write_sample(tmp_path)
    artifact, entries = hash_directory(tmp_path)
    assert artifact.sha256 == by_the_definition(tmp_path)
    assert [e.path for e in entries] == ["a-b.txt", "a/b.txt", "b.bin", "é/n.txt"]
    assert (artifact.files, artifact.bytes) == (4, 16)


def test_the_hash_is_pinned(tmp_path: Path) -> None:
    write_sample(tmp_path)
    assert hash_directory(tmp_path)[0].sha256 == SAMPLE_SHA256


def test_modes_times_and_empty_directories_do_not_count(tmp_path: Path) -> None:
    write_sample(tmp_path)
    before = hash_directory(tmp_path)[0]
    os.utime(tmp_path / "b.bin", (0, 0))
    (tmp_path / "b.bin").chmod(0o600)
    (tmp_path / "another-empty-dir").mkdir()
    assert hash_directory(tmp_path)[0] == before


def test_renaming_or_moving_bytes_between_files_counts(tmp_path: Path) -> None:
    (tmp_path / "a").write_bytes(b"12")
    (tmp_path / "b").write_bytes(b"3")
    before = hash_directory(tmp_path)[0].sha256
    (tmp_path / "a").write_bytes(b"1")
    (tmp_path / "b").write_bytes(b"23")
    moved = hash_directory(tmp_path)[0].sha256
    (tmp_path / "b").rename(tmp_path / "c")
    renamed = hash_directory(tmp_path)[0].sha256
    assert len({before, moved, renamed}) == 3


names = st.text(st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="/\\"),
                min_size=1, max_size=8).filter(lambda n: n not in (".", ".."))


@given(st.lists(st.tuples(names, st.binary(max_size=20)), min_size=1, max_size=6,
                unique_by=lambda t: t[0]))
def test_manifests_round_trip(files: list[tuple[str, bytes]]) -> None:
    entries = sorted((FileEntry(n, len(d), hashlib.sha256(d).hexdigest()) for n, d in files),
                     key=lambda e: e.path)
    assert parse_manifest(manifest_bytes(entries)) == entries
    assert artifact_of(entries).sha256 == hashlib.sha256(manifest_bytes(entries)).hexdigest()


def test_describe_changes_shortens_long_lists() -> None:
    recorded = [FileEntry(f"f{i}", 1, "x") for i in range(8)]
    assert describe_changes(recorded, []) == "missing: f0, f1, f2, f3, f4, … (3 more)"
