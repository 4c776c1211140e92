"""The public surface of headwater.registry is deliberate: these names, no others."""

from __future__ import annotations

import headwater.registry

PUBLIC = [
    "AliasMove", "Artifact", "ArtifactStore", "CheckedOut", "CodeVersion", "Creator", "Lease",
    "Line", "Lineage", "LineageTree", "LoadedVersion", "LocalArtifacts",
    "MemoryRegistryBackend", "ModelRegistry",
    "ModelSummary", "ModelVersion", "MoveKind", "OffsetRange", "RegistryBackend",
    "SqliteRegistryBackend", "TopicSlice", "TrainingSlice", "TriggerKind", "TrustChange",
    "TrustKind", "VersionStatus",
    "check_lineage", "decode_lineage", "detect_code_version", "encode_lineage", "forks",
    "hash_directory", "open_artifacts", "open_registry",
    "ReproductionCheck", "Reproduction", "judge",
]


def test_exported_members() -> None:
    assert sorted(headwater.registry.__all__) == sorted(PUBLIC)


def test_all_names_exist_and_the_package_is_documented() -> None:
    assert headwater.registry.__doc__
    for name in headwater.registry.__all__:
        assert hasattr(headwater.registry, name), name
