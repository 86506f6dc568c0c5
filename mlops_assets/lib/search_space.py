"""The hyper-parameter search space: seeded random sampling of LightGBM parameters.

Configurations are sampled here with a seeded generator and handed to Tune as one grid, so a sweep is reproducible
and the benchmark's plain loop can run exactly the same trials.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class ParamRange:
    low: float
    high: float
    log: bool = False
    integer: bool = False

    def sample(self, rng: np.random.Generator) -> float | int:
        if self.log:
            value = float(np.exp(rng.uniform(math.log(self.low), math.log(self.high))))
        else:
            value = float(rng.uniform(self.low, self.high))
        return round(value) if self.integer else round(value, 6)

    def describe(self) -> str:
        return f"{'log-' if self.log else ''}{'int' if self.integer else 'uniform'}[{self.low}, {self.high}]"


# The LightGBM parameters that matter most on tabular data of this size; rounds are chosen by early stopping.
DEFAULT_SEARCH_SPACE: dict[str, ParamRange] = {
    "num_leaves": ParamRange(8, 256, log=True, integer=True),
    "learning_rate": ParamRange(0.02, 0.3, log=True),
    "min_data_in_leaf": ParamRange(10, 400, log=True, integer=True),
    "feature_fraction": ParamRange(0.5, 1.0),
    "bagging_fraction": ParamRange(0.5, 1.0),
    "lambda_l1": ParamRange(1e-3, 10.0, log=True),
    "lambda_l2": ParamRange(1e-3, 10.0, log=True),
}


def sample_configs(
    count: int, seed: int, space: Mapping[str, ParamRange] = DEFAULT_SEARCH_SPACE
) -> list[dict[str, float | int]]:
    rng = np.random.default_rng(seed)
    return [{name: spec.sample(rng) for name, spec in space.items()} for _ in range(count)]
