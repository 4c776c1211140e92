"""Models: one adapter protocol, a fast built-in online linear model, River, sklearn, PyTorch.

Every model — the built-in :class:`LogisticRegression` and :class:`LinearRegression`,
a River estimator (:mod:`headwater.models.river`, ``pip install 'headwater[river]'``),
a scikit-learn estimator (:mod:`headwater.models.sklearn`, ``headwater[sklearn]``), a
PyTorch network (:mod:`headwater.models.torch`, ``headwater[torch]``) —
implements :class:`Model`: ``predict`` / ``learn`` / ``fit`` on columnar batches
(:data:`Features`, a mapping of column name to NumPy array), ``predict_one`` on a dict
for serving, ``save`` / ``load`` / ``clone`` / ``params``. A saved model is a directory
with ``headwater-model.json``; :func:`load_model` reads any format in :data:`FORMATS`.
:func:`read_model` reads what users have (a saved model, a skops file, a pickled
estimator) and :func:`build_model` makes a built-in model, by name, that has learnt
nothing. Importing this package imports none of River, scikit-learn and PyTorch.

>>> import numpy as np, tempfile
>>> model = LogisticRegression()
>>> model.learn({"x": np.array([-1.0, 1.0] * 20)}, np.array([0, 1] * 20))
>>> directory = tempfile.mkdtemp()
>>> model.save(directory)
>>> load_model(directory).predict({"x": np.array([-1.0, 1.0])}).round(2).tolist()
[0.02, 0.97]
"""

from headwater.models.builtins import BUILTINS, build_model
from headwater.models.features import Features, FeatureSchema, from_arrow
from headwater.models.files import read_model
from headwater.models.formats import FORMATS, load_model
from headwater.models.linear import LinearRegression, LogisticRegression
from headwater.models.protocol import Model

__all__ = [
    "BUILTINS",
    "FORMATS",
    "FeatureSchema",
    "Features",
    "LinearRegression",
    "LogisticRegression",
    "Model",
    "build_model",
    "from_arrow",
    "load_model",
    "read_model",
]
