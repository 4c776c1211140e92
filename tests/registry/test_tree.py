"""The lineage tree and how it is cut into lines for drawing."""

from __future__ import annotations

from headwater.registry import Artifact, Lineage, LineageTree, ModelVersion


def version(number: int, parent: int | None = None) -> ModelVersion:
    return ModelVersion(model="m", version=number, artifact=Artifact(sha256="", files=1, bytes=1),
                        lineage=Lineage(parent=parent, created_at=number), status_at=number)


def tree_of(parents: dict[int, int | None], aliases: dict[str, int] | None = None) -> LineageTree:
    return LineageTree.build("m", [version(n, p) for n, p in parents.items()], aliases or {})


def test_the_main_line_follows_the_largest_subtree() -> None:
    tree = tree_of({1: None, 2: 1, 3: 1, 4: 3, 5: 4, 6: 2})
    assert tree.sizes() == {1: 6, 2: 2, 3: 3, 4: 2, 5: 1, 6: 1}
    assert [tuple(line) for line in tree.lines()] == [(None, (1, 3, 4, 5)), (1, (2, 6))]


def test_every_version_is_drawn_once_after_its_parent() -> None:
    parents: dict[int, int | None] = {1: None}
    for n in range(2, 200):
        parents[n] = (n * 7919) % (n - 1) + 1  # an arbitrary earlier version
    parents[200] = None
    tree = tree_of(parents)
    drawn: list[int] = []
    for line in tree.lines():
        assert line.branch_of is None or line.branch_of in drawn
        drawn.extend(line.versions)
        for earlier, later in zip(line.versions, line.versions[1:], strict=False):
            assert parents[later] == earlier
    assert sorted(drawn) == list(range(1, 201))


def test_a_long_chain_is_one_line_without_recursion() -> None:
    parents: dict[int, int | None] = {n: (n - 1 or None) for n in range(1, 20_001)}
    lines = tree_of(parents).lines()
    assert len(lines) == 1
    assert len(lines[0].versions) == 20_000


def test_a_part_of_the_tree_and_alias_marks() -> None:
    tree = tree_of({4: 3, 5: 4, 6: 4}, {"champion": 5, "challenger": 6, "old": 1})
    assert tree.roots == (4,)
    assert tree.aliases == {5: ("champion",), 6: ("challenger",)}
