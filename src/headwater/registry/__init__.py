"""The model store: immutable versions, verified artifacts, lineage and aliases.

A *model version* is an artifact directory — whatever a model adapter saved — plus a
:class:`Lineage` record: the parent version it was trained from, the slice of the log
it learned from, the feature-set hash, the code, hyper-parameters, metrics, and what
created it and when. Versions never change once registered (only their status:
``candidate``, ``rejected`` with the reason, ``archived``). Artifacts are stored by the
SHA-256 of their content and are checked against it every time they are handed out.

*Aliases* (``champion``, ``challenger``, any name) point at versions; every move is
kept in an append-only history (when, by whom, why, from which version to which), and
:meth:`ModelRegistry.rollback` undoes the latest move as a new one.

A *lease* (:meth:`ModelRegistry.acquire_lease`) makes one process the trainer of a
model: it expires unless renewed, and passes to another holder under a new epoch; a
version registered or promoted under a lease is recorded only while that lease is held,
so a trainer that lost it never forks the lineage.

The registry stores and verifies directories, and :meth:`ModelRegistry.load` is the one
way a component loads a model from it: after the hash check, and code-running formats
(pickle) only once the registry's operator has opted in with :meth:`ModelRegistry.trust`
(``headwater models trust --pickle``), a change recorded with who, when and why.

Records live in a :class:`RegistryBackend`: SQLite (embedded, the default),
PostgreSQL (:mod:`headwater.registry.postgres`, ``pip install 'headwater[postgres]'``)
or in memory. Artifacts live on local disk or at any fsspec URL
(:mod:`headwater.registry.remote`). :func:`open_registry` picks both by location::

    from headwater.registry import Lineage, open_registry

    with open_registry(".headwater/registry") as registry:
        v = registry.register("churn", "out/model", lineage=Lineage(parent=3))
        registry.promote("churn", v.version, actor="ci", reason="logloss 0.31 < 0.33")
        path = registry.checkout("churn", "champion")    # verified, read-only
        model = registry.load("churn", "champion").model  # verified, then loaded

A version's lineage names the slice of the log it learned from (a trainer of
:mod:`headwater.learning` records it); :func:`headwater.learning.reproduce` replays the
slice later, as the trainer learnt it, and :func:`judge` says whether the same version came
out (``headwater models reproduce``).
"""

from headwater.registry.aliases import forks
from headwater.registry.artifacts import ArtifactStore, LocalArtifacts
from headwater.registry.backend import RegistryBackend
from headwater.registry.code import detect_code_version
from headwater.registry.connect import open_artifacts, open_registry
from headwater.registry.hashing import hash_directory
from headwater.registry.lineage import (
    CodeVersion,
    Creator,
    Lineage,
    OffsetRange,
    TopicSlice,
    TrainingSlice,
    TriggerKind,
    check_lineage,
    decode_lineage,
    encode_lineage,
)
from headwater.registry.memory import MemoryRegistryBackend
from headwater.registry.records import (
    AliasMove,
    Artifact,
    Lease,
    ModelSummary,
    ModelVersion,
    MoveKind,
    TrustChange,
    TrustKind,
    VersionStatus,
)
from headwater.registry.registry import CheckedOut, LoadedVersion, ModelRegistry
from headwater.registry.reproduction import Reproduction, ReproductionCheck, judge
from headwater.registry.sqlite import SqliteRegistryBackend
from headwater.registry.tree import Line, LineageTree

__all__ = [
    "AliasMove",
    "Artifact",
    "ArtifactStore",
    "CheckedOut",
    "CodeVersion",
    "Creator",
    "Lease",
    "Line",
    "Lineage",
    "LineageTree",
    "LoadedVersion",
    "LocalArtifacts",
    "MemoryRegistryBackend",
    "ModelRegistry",
    "ModelSummary",
    "ModelVersion",
    "MoveKind",
    "OffsetRange",
    "RegistryBackend",
    "Reproduction",
    "ReproductionCheck",
    "SqliteRegistryBackend",
    "TopicSlice",
    "TrainingSlice",
    "TriggerKind",
    "TrustChange",
    "TrustKind",
    "VersionStatus",
    "check_lineage",
    "decode_lineage",
    "detect_code_version",
    "encode_lineage",
    "forks",
    "hash_directory",
    "judge",
    "open_artifacts",
    "open_registry",
]
