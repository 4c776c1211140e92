"""What a rollback undoes, worked out from an alias's history alone.

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
"""

from __future__ import annotations

from collections.abc import Sequence

from headwater.registry.records import AliasMove

__all__ = ["undone_by_rollback"]


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
