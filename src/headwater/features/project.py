"""Loading feature definitions from a project module, and recording what was applied.

A project is a Python file whose module-level names hold :class:`Entity`,
:class:`Feature`, :class:`DerivedFeature` and :class:`FeatureSet` objects. Applying it
records the definitions (as JSON, derived features by name, inputs and code digest) in
``applied.json``, so ``headwater features list`` and ``show`` describe what is running
and a changed definition is visible as a changed digest.
"""

from __future__ import annotations

import importlib.util
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import msgspec

from headwater.errors import ValidationError
from headwater.features.definitions import DerivedFeature, Entity, Feature, FeatureSet
from headwater.fsync import FsyncPolicy, atomic_write

__all__ = ["Applied", "AppliedFeature", "Project", "load_project", "read_applied", "write_applied"]


@dataclass
class Project:
    """The definitions found in a project module."""

    path: Path
    entities: list[Entity] = field(default_factory=list)
    features: list[Feature] = field(default_factory=list)
    derived: list[DerivedFeature] = field(default_factory=list)
    feature_sets: list[FeatureSet] = field(default_factory=list)

    def feature_set(self, name: str) -> FeatureSet:
        for fs in self.feature_sets:
            if fs.name == name:
                return fs
        raise ValidationError("feature_set", f"no feature set {name!r} in {self.path}")


def load_project(path: str | Path) -> Project:
    """Import the module at ``path`` and collect its definitions."""
    file = Path(path)
    if not file.is_file():
        raise ValidationError("project", f"no project module at {file}")
    spec = importlib.util.spec_from_file_location(f"headwater_project_{file.stem}", file)
    if spec is None or spec.loader is None:
        raise ValidationError("project", f"{file} is not a Python module")
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module
    try:
        spec.loader.exec_module(module)
    except Exception as exc:
        raise ValidationError("project", f"{file}: {type(exc).__name__}: {exc}") from exc
    project = Project(file)
    found: list[Any] = [item for value in vars(module).values() for item in _definitions(value)]
    found += [f for item in found if isinstance(item, FeatureSet) for f in item.features]
    for item in found:
        if isinstance(item, Feature) and item not in project.features:
            project.features.append(item)
        elif isinstance(item, DerivedFeature) and item not in project.derived:
            project.derived.append(item)
        elif isinstance(item, Entity) and item not in project.entities:
            project.entities.append(item)
        elif isinstance(item, FeatureSet) and item not in project.feature_sets:
            project.feature_sets.append(item)
    defined: list[Feature | DerivedFeature] = [*project.features, *project.derived]
    names = [f.name for f in defined]
    repeated = sorted({n for n in names if names.count(n) > 1})
    if repeated:
        raise ValidationError("project", f"{file}: several definitions named {repeated}")
    if not project.features:
        raise ValidationError("project", f"{file} defines no features")
    return project


def _definitions(value: Any) -> list[Any]:
    if isinstance(value, list | tuple):
        return [v for v in value if isinstance(v, Entity | Feature | DerivedFeature | FeatureSet)]
    return [value] if isinstance(value, Entity | Feature | DerivedFeature | FeatureSet) else []


class AppliedFeature(msgspec.Struct, frozen=True):
    name: str
    digest: str
    definition: Feature | None = None
    inputs: tuple[str, ...] = ()


class Applied(msgspec.Struct, frozen=True):
    """What ``headwater features apply`` last recorded."""

    project: str
    applied_at: int
    features: list[AppliedFeature]
    feature_sets: dict[str, str]  # name -> version
    members: dict[str, list[str]]  # feature set -> feature names


def write_applied(directory: Path, project: Project, now: int, *,
                  fsync: FsyncPolicy = "group") -> Applied:
    applied = Applied(
        str(project.path.resolve()), now,
        [AppliedFeature(f.name, f.digest, f) for f in project.features]
        + [AppliedFeature(d.name, d.digest, None, d.inputs) for d in project.derived],
        {fs.name: fs.version for fs in project.feature_sets},
        {fs.name: fs.names for fs in project.feature_sets},
    )
    directory.mkdir(parents=True, exist_ok=True)
    atomic_write(directory / "applied.json", msgspec.json.format(msgspec.json.encode(applied)),
                 fsync=fsync)
    return applied


def read_applied(directory: Path) -> Applied | None:
    path = directory / "applied.json"
    if not path.exists():
        return None
    return msgspec.json.decode(path.read_bytes(), type=Applied)
