"""A PyTorch network as a Headwater model (``pip install 'headwater[torch]'``).

:class:`TorchModel` is a multi-layer perceptron over numeric columns (``hidden=()``
makes it a logistic or linear regression), described entirely by its
hyper-parameters, so an artifact never holds code: it is the manifest plus the
network's and the optimiser's tensors in safetensors format (``torch-safetensors``),
which loads without unpickling anything and without ``trusted=True``.

Training. ``learn`` runs ``epochs`` passes over the batch in order (no shuffling), in
mini-batches of ``batch_size`` rows, with SGD (``momentum``) or Adam, on binary
cross-entropy (``task="classification"``, scores are P(y = 1)) or squared error
(``task="regression"``). The weights start from ``seed``, so ``fit`` on the same data
gives the same network; the optimiser's state is saved too, so a model saved and loaded
between two ``learn`` calls continues exactly as one that was not. Computation is in
float64 on the CPU (the scores of ``predict`` and ``predict_one`` agree), in a
:func:`torch.inference_mode` block when scoring.

Input columns. The network is built by the first ``learn``, for the numeric columns of
that batch, and saved with their names: a model answers the neutral value only while it
has no network at all, and an artifact with weights but no column names is refused.

>>> import numpy as np
>>> model = TorchModel(hidden=[8], lr=0.05, epochs=20, batch_size=10)
>>> model.learn({"x": np.array([-1.0, 1.0] * 10)}, np.array([0, 1] * 10))
>>> model.predict_one({"x": 1.0}) > 0.5
True
"""

from __future__ import annotations

import importlib
import math
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any, ClassVar, Final, Self

import numpy as np
import numpy.typing as npt

from headwater.errors import MissingExtraError, ModelArtifactError, ValidationError
from headwater.models import artifact, features
from headwater.models.features import Features, FeatureSchema, FloatArray
from headwater.models.protocol import PathArg

try:  # imported by name: typing does not depend on the extra being installed
    torch: Any = importlib.import_module("torch")
except ImportError as exc:
    raise MissingExtraError("The PyTorch model adapter", "torch", "torch") from exc
try:
    safetensors_torch: Any = importlib.import_module("safetensors.torch")
except ImportError as exc:
    raise MissingExtraError("The PyTorch model adapter", "torch", "safetensors") from exc

__all__ = ["TorchModel"]

FORMAT: Final = "torch-safetensors"
FORMAT_VERSION: Final = 1
_FILE: Final = "weights.safetensors"
_TASKS: Final = ("classification", "regression")
_OPTIMIZERS: Final = ("sgd", "adam")
_ACTIVATIONS: Final = ("relu", "tanh")


class TorchModel:
    """A PyTorch MLP behind the :class:`~headwater.models.Model` protocol."""

    format: ClassVar[str] = FORMAT

    def __init__(self, *, hidden: Sequence[int] = (), activation: str = "relu",
                 task: str = "classification", optimizer: str = "adam", lr: float = 0.01,
                 momentum: float = 0.0, weight_decay: float = 0.0, epochs: int = 1,
                 batch_size: int = 32, seed: int = 0) -> None:
        if isinstance(hidden, str | bytes) or not all(
                isinstance(h, int) and not isinstance(h, bool) and 1 <= h <= 1 << 16
                for h in hidden):
            raise ValidationError("hidden", f"expected layer widths in [1, 65536], got "
                                            f"{hidden!r}")
        for name, value, allowed in (("activation", activation, _ACTIVATIONS),
                                     ("task", task, _TASKS),
                                     ("optimizer", optimizer, _OPTIMIZERS)):
            if value not in allowed:
                raise ValidationError(name, f"expected one of {', '.join(allowed)}, got "
                                            f"{value!r}")
        for name, number, positive in (("lr", lr, True), ("momentum", momentum, False),
                                       ("weight_decay", weight_decay, False)):
            if not (isinstance(number, int | float) and math.isfinite(number)
                    and (number > 0 if positive else number >= 0)):
                raise ValidationError(name, f"expected a finite number {'>' if positive else '>='}"
                                            f" 0, got {number!r}")
        for name, count in (("epochs", epochs), ("batch_size", batch_size), ("seed", seed)):
            low = 0 if name == "seed" else 1
            if isinstance(count, bool) or not isinstance(count, int) or count < low:
                raise ValidationError(name, f"expected an int >= {low}, got {count!r}")
        self._params: dict[str, Any] = {
            "hidden": [int(h) for h in hidden], "activation": activation, "task": task,
            "optimizer": optimizer, "lr": float(lr), "momentum": float(momentum),
            "weight_decay": float(weight_decay), "epochs": epochs, "batch_size": batch_size,
            "seed": seed,
        }
        self._classifier = task == "classification"
        self._schema: FeatureSchema | None = None
        self._net: Any = None
        self._optimizer: Any = None

    def params(self) -> dict[str, Any]:
        """The hyper-parameters (JSON values)."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._params.items()}

    def clone(self) -> Self:
        """The same hyper-parameters, nothing learnt."""
        return type(self)(**self._params)

    @property
    def network(self) -> Any:
        """The ``torch.nn.Sequential`` (``None`` before anything was learnt)."""
        return self._net

    def predict(self, batch: Features) -> FloatArray:
        """One score per row (P(y = 1) or the prediction)."""
        n = features.batch_length(batch)
        if self._schema is None:
            return np.full(n, self._neutral)
        return self._forward(features.numeric_matrix(batch, self._schema.numeric, n))

    def predict_one(self, x: Mapping[str, Any]) -> float:
        """The score of one row."""
        if self._schema is None:
            return self._neutral
        row = []
        for name in self._schema.numeric:
            if name not in x:
                raise ValidationError(name, "missing feature")
            row.append(features.check_number(name, x[name]))
        return float(self._forward(np.array([row], dtype=np.float64))[0])

    def learn(self, batch: Features, y: npt.ArrayLike,
              sample_weight: npt.ArrayLike | None = None) -> None:
        """``epochs`` passes over the batch in order, ``batch_size`` rows per step."""
        schema = self._schema
        if schema is None:
            schema = FeatureSchema.infer(batch)
            if schema.categorical:
                raise ValidationError(schema.categorical[0], "the PyTorch adapter reads "
                                                             "numeric columns only")
        n = features.batch_length(batch)
        matrix = features.numeric_matrix(batch, schema.numeric, n)
        target = features.labels(y, n, binary=self._classifier)
        weight = features.sample_weights(sample_weight, n)
        if self._schema is None:
            self._build(schema)
        inputs = torch.from_numpy(matrix)
        targets = torch.from_numpy(target)
        weights = None if weight is None else torch.from_numpy(weight)
        net, optimizer, size = self._net, self._optimizer, self._params["batch_size"]
        loss_of = (torch.nn.functional.binary_cross_entropy_with_logits if self._classifier
                   else torch.nn.functional.mse_loss)
        net.train()
        for _ in range(self._params["epochs"]):
            for start in range(0, n, size):
                optimizer.zero_grad()
                out = net(inputs[start:start + size]).squeeze(1)
                part = targets[start:start + size]
                if weights is None:
                    loss = loss_of(out, part)
                else:
                    losses = loss_of(out, part, reduction="none")
                    loss = (losses * weights[start:start + size]).mean()
                loss.backward()
                optimizer.step()

    def fit(self, batch: Features, y: npt.ArrayLike,
            sample_weight: npt.ArrayLike | None = None) -> None:
        """Start again from the seeded initial weights, then learn the batch."""
        self._schema = self._net = self._optimizer = None
        self.learn(batch, y, sample_weight)

    def save(self, directory: PathArg) -> None:
        """Write the manifest and the network's and optimiser's tensors (safetensors)."""
        files: dict[str, bytes] = {}
        if self._net is not None:
            tensors = {f"net.{k}": v.detach().contiguous()
                       for k, v in self._net.state_dict().items()}
            for index, state in self._optimizer.state_dict()["state"].items():
                for key, value in state.items():
                    tensor = value if torch.is_tensor(value) else torch.tensor(value)
                    tensors[f"optimizer.{index}.{key}"] = tensor.detach().clone().contiguous()
            files[_FILE] = safetensors_torch.save(tensors)
        manifest = artifact.Manifest(
            FORMAT, FORMAT_VERSION, type(self).__name__, self.params(),
            None if self._schema is None else list(self._schema.numeric),
            metadata={"torch_version": torch.__version__.split("+")[0]})
        artifact.write_artifact(directory, manifest, files)

    @classmethod
    def load(cls, directory: PathArg, *, trusted: bool = False) -> Self:
        """Read a ``torch-safetensors`` artifact (no code runs: ``trusted`` is not needed)."""
        manifest = artifact.read_manifest(directory, FORMAT)
        path = str(Path(directory) / artifact.MANIFEST)
        try:
            model = cls(**manifest.params)
        except (TypeError, ValidationError) as exc:
            raise ModelArtifactError(path, f"bad hyper-parameters: {exc}") from exc
        weights = str(Path(directory) / _FILE)
        if manifest.features is None:
            if _FILE in manifest.files:  # weights whose inputs are unknown: never a constant
                raise ModelArtifactError(weights, "has weights but the manifest names no input "
                                                  "columns (features)")
            return model
        data = artifact.read_file(directory, manifest, _FILE)
        try:
            tensors = safetensors_torch.load(data)
        except Exception as exc:
            raise ModelArtifactError(weights, f"not readable safetensors: {exc}") from exc
        model._build(FeatureSchema(tuple(manifest.features)))
        state = {k[4:]: v for k, v in tensors.items() if k.startswith("net.")}
        try:
            model._net.load_state_dict(state, strict=True)
        except RuntimeError as exc:
            raise ModelArtifactError(weights, f"does not fit the network the "
                                              f"hyper-parameters describe: {exc}") from exc
        restored: dict[int, dict[str, Any]] = {}
        for key, value in tensors.items():
            if key.startswith("optimizer."):
                _, index, name = key.split(".", 2)
                restored.setdefault(int(index), {})[name] = value
        optimizer_state = model._optimizer.state_dict()
        optimizer_state["state"] = restored
        try:
            model._optimizer.load_state_dict(optimizer_state)
        except (RuntimeError, ValueError, KeyError) as exc:
            raise ModelArtifactError(weights, f"bad optimiser state: {exc}") from exc
        return model

    @property
    def _neutral(self) -> float:
        return 0.5 if self._classifier else 0.0

    def _build(self, schema: FeatureSchema) -> None:
        p = self._params
        nn = torch.nn
        layers: list[Any] = []
        width = len(schema.numeric)
        for size in p["hidden"]:
            layers += [nn.Linear(width, size, dtype=torch.float64),
                       nn.ReLU() if p["activation"] == "relu" else nn.Tanh()]
            width = size
        layers.append(nn.Linear(width, 1, dtype=torch.float64))
        net = nn.Sequential(*layers)
        generator = torch.Generator().manual_seed(p["seed"])
        with torch.no_grad():
            for layer in net:
                if isinstance(layer, nn.Linear):  # PyTorch's default bounds, seeded
                    bound = 1.0 / math.sqrt(layer.in_features) if layer.in_features else 0.0
                    layer.weight.uniform_(-bound, bound, generator=generator)
                    layer.bias.uniform_(-bound, bound, generator=generator)
        if p["optimizer"] == "adam":
            optimizer = torch.optim.Adam(net.parameters(), lr=p["lr"],
                                         weight_decay=p["weight_decay"])
        else:
            optimizer = torch.optim.SGD(net.parameters(), lr=p["lr"], momentum=p["momentum"],
                                        weight_decay=p["weight_decay"])
        self._schema, self._net, self._optimizer = schema, net, optimizer

    def _forward(self, matrix: FloatArray) -> FloatArray:
        with torch.inference_mode():
            out = self._net(torch.from_numpy(matrix)).squeeze(1)
            if self._classifier:
                out = torch.sigmoid(out)
            return np.asarray(out.numpy(), dtype=np.float64)
