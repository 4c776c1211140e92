"""Orchestration: running Headwater's components as supervised processes.

``headwater run`` starts the feature engine, the prediction server, the label joiner and
a trainer as separate processes under one :class:`Supervisor`, which restarts any that
stops; training never blocks serving. :class:`RunLock` keeps a second supervisor off
the same home.
"""

from headwater.orchestrator.lock import RunLock
from headwater.orchestrator.supervisor import Component, Supervisor

__all__ = ["Component", "RunLock", "Supervisor"]
