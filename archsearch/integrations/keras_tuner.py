"""archsearch's search spaces as a ``keras_tuner.HyperModel``.

Keras Tuner's own tuners (``RandomSearch``, ``Hyperband``, ``BayesianOptimization``)
then search the same specs as ``archsearch run``. Keras Tuner turns several objectives
into an unweighted sum, and a sum of accuracy and milliseconds means nothing, so the
latency budget is a constraint instead: each trial's deployment network (the spec at
its own input size) is measured first, in archsearch's latency worker and cache; a
network over the budget is not trained and reports ``val_accuracy`` 0 (so it can never
be the best trial), and every trial records ``latency_ms`` and ``within_budget`` among
its metrics.

>>> import keras_tuner                                         # doctest: +SKIP
>>> from archsearch.data import load_dataset
>>> from archsearch.integrations.keras_tuner import SpaceHyperModel
>>> data = load_dataset("digits")
>>> hypermodel = SpaceHyperModel("mobilenetv3", budget_ms=20, image_size=data.image_size, classes=data.classes)
>>> tuner = keras_tuner.RandomSearch(hypermodel, objective="val_accuracy", max_trials=10)
>>> tuner.search(data.x_train, data.y_train, validation_data=(data.x_val, data.y_val), epochs=6)
"""

from __future__ import annotations

from typing import Any

import keras
import keras_tuner
import numpy as np

from archsearch.errors import ArchsearchError
from archsearch.space import Parameter, SearchSpace, load_space
from archsearch.spec import NetworkSpec
from archsearch.train import TrainConfig, compile_for_training, model_inputs, prepare_training, proxy_spec

OBJECTIVE = "val_accuracy"
_SCALAR_TYPES = (bool, int, float, str)


def _choice(hp: keras_tuner.HyperParameters, parameter: Parameter) -> Any:
    """``hp.Choice`` over a parameter's values; values Keras Tuner cannot hold are chosen by index."""
    values = list(parameter.choices)
    kinds = {type(v) for v in values}
    if len(kinds) == 1 and kinds <= set(_SCALAR_TYPES):
        return hp.Choice(parameter.name, values, ordered=False)
    index = hp.Choice(f"{parameter.name}#", list(range(len(values))), ordered=False)
    return values[index]


class SpaceHyperModel(keras_tuner.HyperModel):
    """A Keras Tuner hypermodel over an archsearch search space, with a measured latency budget.

    ``build`` returns the network Keras Tuner trains: the chosen spec at the training
    ``image_size`` with ``classes`` outputs and BatchNorm momentum ``batchnorm_momentum``
    (the same proxy-training copy ``archsearch run`` trains), compiled with AdamW.
    ``fit`` measures the deployment network's latency before training and trains only
    networks within ``budget_ms``. Training images are expected in [0, 255], as
    ``archsearch.data`` loads them.
    """

    def __init__(self, space: str | SearchSpace, budget_ms: float, image_size: int, classes: int, *,
                 backend: str = "litert", threads: int = 1, storage: str | None = None,
                 learning_rate: float = TrainConfig.learning_rate, weight_decay: float = TrainConfig.weight_decay,
                 batchnorm_momentum: float = TrainConfig.batchnorm_momentum, seed: int = TrainConfig.seed,
                 name: str | None = None) -> None:
        if not budget_ms > 0:
            raise ArchsearchError(f"budget_ms must be a positive number of milliseconds, got {budget_ms!r}")
        loaded = load_space(space) if isinstance(space, str) else space
        self.space = loaded.with_overrides(classes=classes)
        super().__init__(name=name or f"archsearch-{self.space.name}", tunable=True)
        self.budget_ms = float(budget_ms)
        self.image_size, self.classes = image_size, classes
        self.backend, self.threads, self.storage = backend, threads, storage
        self.recipe = TrainConfig(learning_rate=learning_rate, weight_decay=weight_decay,
                                  batchnorm_momentum=batchnorm_momentum, seed=seed)

    def spec(self, hp: keras_tuner.HyperParameters) -> NetworkSpec:
        """The deployment spec the hyperparameters choose (its latency is the one constrained)."""
        return self.space.spec_at({p.name: _choice(hp, p) for p in self.space.parameters})

    def training_spec(self, spec: NetworkSpec) -> NetworkSpec:
        """The proxy-training copy of ``spec``, as ``archsearch run`` trains it."""
        return proxy_spec(spec, self.image_size, self.classes, self.recipe.batchnorm_momentum)

    def latency_ms(self, spec: NetworkSpec) -> float:
        """Measured median latency of ``spec`` (archsearch's protocol and cache)."""
        from archsearch.latency import measure_latency

        return measure_latency(spec, backend=self.backend, threads=self.threads, storage=self.storage).median_ms

    def build(self, hp: keras_tuner.HyperParameters) -> keras.Model:
        from archsearch.compile import compile_model

        keras.utils.set_random_seed(self.recipe.seed)
        model = compile_model(self.training_spec(self.spec(hp)))
        compile_for_training(model, self.recipe)
        return model

    def fit(self, hp: keras_tuner.HyperParameters, model: keras.Model, *args: Any, **kwargs: Any) -> dict[str, float]:
        """Measure, then train only within the budget; returns the metrics Keras Tuner records."""
        spec = self.spec(hp)
        latency = self.latency_ms(spec)
        facts = {"latency_ms": latency, "within_budget": float(latency <= self.budget_ms)}
        if latency > self.budget_ms:
            return {OBJECTIVE: 0.0, **facts, "epochs_trained": 0.0}
        args, kwargs = self._scaled_inputs(spec, args, kwargs)
        x = kwargs.get("x", args[0] if args else None)
        y = kwargs.get("y", args[1] if len(args) > 1 else None)
        if isinstance(x, np.ndarray) and isinstance(y, np.ndarray):
            prepare_training(model, x, y)  # one trace of the training step instead of two
        history = model.fit(*args, **kwargs).history
        if OBJECTIVE not in history:
            raise ArchsearchError("SpaceHyperModel needs validation data: pass validation_data to search()")
        return {OBJECTIVE: float(np.max(history[OBJECTIVE])), **facts, "epochs_trained": float(len(history["loss"]))}

    @staticmethod
    def _scaled_inputs(spec: NetworkSpec, args: tuple[Any, ...], kwargs: dict[str, Any]) -> tuple[Any, Any]:
        """Images in [0, 255] as the spec expects them (only ``preprocessing: none`` wants them scaled)."""
        if spec.input.preprocessing != "none":
            return args, kwargs
        args = tuple(model_inputs(spec, a) if i == 0 and isinstance(a, np.ndarray) else a for i, a in enumerate(args))
        if isinstance(kwargs.get("x"), np.ndarray):
            kwargs = {**kwargs, "x": model_inputs(spec, kwargs["x"])}
        validation = kwargs.get("validation_data")
        if isinstance(validation, tuple) and isinstance(validation[0], np.ndarray):
            kwargs = {**kwargs, "validation_data": (model_inputs(spec, validation[0]), *validation[1:])}
        return args, kwargs


__all__ = ["OBJECTIVE", "SpaceHyperModel"]
