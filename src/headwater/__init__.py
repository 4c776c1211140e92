"""Headwater: streaming-first real-time machine learning.

One log is the source of truth; features, training data and models are derived from it
and can be rebuilt by replaying it. Start with :func:`open_log`.
"""

from headwater.errors import HeadwaterError
from headwater.log import Log, Schema, open_log
from headwater.time import Clock, ManualClock, SystemClock

__version__ = "0.1.0"

__all__ = [
    "Clock",
    "HeadwaterError",
    "Log",
    "ManualClock",
    "Schema",
    "SystemClock",
    "__version__",
    "open_log",
]
