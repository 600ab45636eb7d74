"""Fast stand-in methods for the experiment tests, registered only for the test that asks.

They are classical (ridge regression on mean-pooled features) so a run takes milliseconds;
``fake_methods`` puts them in the registry for one test and takes them out afterwards.
"""

from __future__ import annotations

from dataclasses import dataclass

import pytest

from s4aqa.errors import S4AQAError
from s4aqa.methods import registry
from s4aqa.methods._pooling import as_array
from s4aqa.methods.base import Method, MethodOptions


@dataclass
class RidgeOptions(MethodOptions):
    alpha: float = 1.0


@dataclass
class SemiOptions(MethodOptions):
    alpha: float = 1.0
    weight: float = 0.5


class FakeRidge(Method):
    """Ridge regression on mean-pooled segment features; embed = the first 8 pooled dims."""

    Options = RidgeOptions

    def fit(self, labeled, unlabeled=None, validation=None, hooks=()):
        from sklearn.linear_model import Ridge

        self.unlabeled_for(unlabeled)
        self.model = Ridge(alpha=self.options.alpha).fit(labeled.features.mean(axis=1),
                                                         labeled.scores)
        return self

    def predict(self, features):
        return self.model.predict(as_array(features).mean(axis=1))

    def embed(self, features):
        return as_array(features).mean(axis=1)[:, :8]


class FakeSemi(FakeRidge):
    """Needs unlabeled videos (so it is skipped at 100% labels)."""

    Options = SemiOptions
    uses_unlabeled = True


class FakeBroken(FakeRidge):
    def fit(self, labeled, unlabeled=None, validation=None, hooks=()):
        raise S4AQAError("broken on purpose")


FAKES = {"_fake_ridge": FakeRidge, "_fake_semi": FakeSemi, "_fake_broken": FakeBroken}


@pytest.fixture
def fake_methods(monkeypatch):
    registry.available()  # load the real methods first
    for name, cls in FAKES.items():
        monkeypatch.setattr(cls, "name", name)
        registry.METHODS.add(name, cls, preset=None, base=name)
    yield sorted(FAKES)
    for name in FAKES:
        registry.METHODS.remove(name)
