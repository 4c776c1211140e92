"""What a rollback undoes, and where an alias's line forked, worked out from its history.

The history of an alias is append-only; a rollback is a new move. Read as a stack,
each ``promote`` or ``remove`` pushes a move and each ``rollback`` pops the move it
undid. A rollback undoes the move on top — the latest move not yet undone — by moving
the alias back to that move's ``from_version``. So rolling back twice after three
promotions v1 → v2 → v3 leaves the alias on v1, not back on v3.

>>> def move(kind, frm, to, seq):
...     return AliasMove(model="m", alias="champion", from_version=frm, to_version=to,
...                      kind=kind, actor="a", reason="r", at=seq, seq=seq)
>>> history = [move("promote", None, 1, 1), move("promote", 1, 2, 2),
...            move("promote", 2, 3, 3), move("rollback", 3, 2, 4)]
>>> undone_by_rollback(history).seq
2

An alias that follows one trainer moves along one line of descent: each version it is
promoted to was trained, directly or through rejected versions, from the one it
replaces. A promotion to a version that is not is a *fork* (:func:`forks`): two
trainers of one model, each on its own branch, make the alias flip between them.

>>> parents = {1: None, 2: 1, 3: 2, 4: 1}
>>> [m.to_version for m in forks(history + [move("promote", 2, 4, 5)], parents)]
[4]
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

from headwater.registry.records import AliasMove

__all__ = ["forks", "undone_by_rollback"]


def undone_by_rollback(history: Sequence[AliasMove]) -> AliasMove | None:
    """The move the next rollback of this alias undoes (``None``: nothing to undo).

    ``history`` is one alias's moves, oldest first.
    """
    stack: list[AliasMove] = []
    for move in history:
        if move.kind == "rollback":
            if stack:
                stack.pop()
        else:
            stack.append(move)
    return stack[-1] if stack else None


def forks(history: Sequence[AliasMove], parents: Mapping[int, int | None]
          ) -> list[AliasMove]:
    """The promotions in ``history`` (one alias's moves) to a version that does not
    descend from the version the alias pointed at before; ``parents`` maps each version
    of the model to its parent."""
    found = []
    for move in history:
        if move.kind != "promote" or move.from_version is None or move.to_version is None:
            continue
        at: int | None = move.to_version
        while at is not None and at != move.from_version:
            at = parents.get(at)
        if at is None:
            found.append(move)
    return found
