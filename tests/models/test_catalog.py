"""The catalogue: every model's hyper-parameters are declared once, in its config dataclass."""
from __future__ import annotations

import dataclasses
import inspect

import pytest

from semrec.errors import ConfigError
from semrec.models import catalog
from semrec.models.catalog import MODELS


@pytest.mark.parametrize("name", list(MODELS))
def test_hyper_parameters_are_declared_once(name):
    spec = MODELS[name]
    params = inspect.signature(spec.cls.__init__).parameters
    named = [p for p in params if p != "self" and params[p].kind is not inspect.Parameter.VAR_KEYWORD]
    # sizes, the input tensors the catalogue names, and where it runs: nothing the config declares
    assert set(named) <= {"n_users", "n_items", "device", *spec.inputs}, f"{name}: {named}"
    assert not {f.name for f in dataclasses.fields(spec.config)} & set(named)
    assert any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())


@pytest.mark.parametrize("name", ["popularity", "itemknn", "graphfilter", "mf", "lightgcn", "xsimgcl"])
def test_the_model_is_built_from_its_config_and_refuses_unknown_settings(name):
    spec = MODELS[name]
    model = catalog.build(name, 4, 5, spec.config())
    assert getattr(model, "config", spec.config()) == spec.config()
    with pytest.raises((ConfigError, TypeError)):
        spec.cls(4, 5, no_such_setting=1)
