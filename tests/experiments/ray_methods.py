"""Fast stand-in methods for the Ray backend tests, registered in the test process and, through a
Ray worker setup hook (``register``), in every Ray worker process.

``_ray_ridge`` is ridge regression on mean-pooled features (milliseconds a run). Every fit notes
``<method> <seed>`` in ``$S4AQA_RAY_TEST_DIR/fits.log``, so a test can count how often each run
trained. ``_ray_dies_once`` is the same but kills its own process in its first fit (a marker
file makes it the only time), as a lost worker would.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

from s4aqa.methods import registry
from s4aqa.methods.base import Method, MethodOptions, as_array

TEST_DIR = "S4AQA_RAY_TEST_DIR"


@dataclass
class RidgeOptions(MethodOptions):
    alpha: float = 1.0


class RidgeOnMeans(Method):
    Options = RidgeOptions

    def fit(self, labeled, unlabeled=None, validation=None, hooks=()):
        from sklearn.linear_model import Ridge

        self.unlabeled_for(unlabeled)
        with open(Path(os.environ[TEST_DIR]) / "fits.log", "a") as log:
            log.write(f"{self.name} {self.seed}\n")
        self.die()
        self.model = Ridge(alpha=self.options.alpha).fit(labeled.features.mean(axis=1),
                                                         labeled.scores)
        return self

    def die(self) -> None:
        pass

    def predict(self, features):
        return self.model.predict(as_array(features).mean(axis=1))


class DiesOnce(RidgeOnMeans):
    def die(self) -> None:
        try:  # O_EXCL: of all the processes, only the first to get here dies
            os.close(os.open(Path(os.environ[TEST_DIR]) / "died", os.O_CREAT | os.O_EXCL))
        except FileExistsError:
            return
        os._exit(1)


METHODS = {"_ray_ridge": RidgeOnMeans, "_ray_dies_once": DiesOnce}


def register() -> None:
    registry.available()  # the real methods first
    for name, cls in METHODS.items():
        cls.name = name
        registry.METHODS.remove(name)
        registry.METHODS.add(name, cls, preset=None, base=name)


def unregister() -> None:
    for name in METHODS:
        registry.METHODS.remove(name)
