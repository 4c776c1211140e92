"""The feature history (offline store): every applied event of every source, with its
event time, append time and log position, for point-in-time joins and training data.

:class:`FeatureHistory` keeps it as Parquet files partitioned by entity bucket and
event time, in a local directory or on object storage (fsspec);
:meth:`FeatureHistory.values_at` evaluates features as of any moment with
:mod:`headwater.features.pointintime`, one entity bucket at a time. The row columns are in
:mod:`~headwater.store.history.rows`, the file layout in
:mod:`~headwater.store.history.layout`, and the protocol that lets compaction run under
readers and writers in :mod:`~headwater.store.history.partition`.
"""

from headwater.store.history.history import FeatureHistory, Progress
from headwater.store.history.rows import APPEND_TIME, ENTITY, EVENT_TIME, OFFSET, PARTITION

__all__ = ["APPEND_TIME", "ENTITY", "EVENT_TIME", "OFFSET", "PARTITION", "FeatureHistory",
           "Progress"]
