"""The strategy catalogue: every name it lists can be built, and the modules that read it stay light."""

from __future__ import annotations

import subprocess
import sys

import pytest

from routeiq.routing.catalogue import (
    DEFAULT_STRATEGY,
    LEARNED_ALGORITHMS,
    STRATEGIES,
    TIERS,
    StrategySpec,
    strategy_names,
    strategy_spec,
)
from routeiq.routing.learned.algorithms import algorithm
from routeiq.routing.load import LoadTracker
from routeiq.routing.profiles import RANK
from routeiq.routing.registry import DESCRIPTIONS, StrategyDeps, create_strategy
from routeiq.routing.scoring import CentroidScorer, LearnedScorer
from routeiq.settings import RouterSettings, Settings


def deps(with_learned: bool) -> StrategyDeps:
    centroid = CentroidScorer(None)  # the length rule: no artifacts needed to build a strategy
    learned = {
        spec.algorithm: LearnedScorer(spec.name, slot=None, centroid=centroid)
        for spec in STRATEGIES
        if spec.algorithm is not None and with_learned
    }
    return StrategyDeps(centroid=centroid, load=LoadTracker(), learned=learned)


@pytest.mark.parametrize("spec", STRATEGIES, ids=lambda spec: spec.name)
def test_every_catalogued_strategy_is_built_under_its_name_and_description(spec: StrategySpec) -> None:
    strategy = create_strategy(spec.name, deps(with_learned=True))
    assert (strategy.name, strategy.description) == (spec.name, spec.description)
    assert DESCRIPTIONS[spec.name] == spec.description


def test_a_learned_strategy_without_its_trained_router_is_refused_by_name() -> None:
    with pytest.raises(ValueError, match=r"llmrouter-knn needs a trained router: .*learned_routers\.knn"):
        create_strategy("llmrouter-knn", deps(with_learned=False))
    with pytest.raises(ValueError, match="unknown routing strategy 'telepathy'"):
        create_strategy("telepathy", deps(with_learned=True))


def test_the_catalogue_agrees_with_what_is_built_and_configured() -> None:
    learned = [spec.algorithm for spec in STRATEGIES if spec.needs_artifact]
    assert learned == list(LEARNED_ALGORITHMS)
    for name in LEARNED_ALGORITHMS:
        assert algorithm(name) is not None  # every catalogued algorithm can be trained
    assert strategy_spec(DEFAULT_STRATEGY).algorithm is None  # the default needs no artifact
    assert RouterSettings().routing_strategy == DEFAULT_STRATEGY
    assert list(RANK) == list(TIERS)
    assert len(set(strategy_names())) == len(STRATEGIES)


def test_settings_name_the_missing_trained_router() -> None:
    with pytest.raises(ValueError, match=r"strategy llmrouter-mf needs a trained router"):
        Settings(router_settings=RouterSettings(routing_strategy="llmrouter-mf"))


def test_settings_and_the_strategies_command_import_no_routing_code() -> None:
    # settings.py reads only the catalogue: importing it must not pull in routing modules (several of
    # which import settings) nor, for `routeiq strategies`, LiteLLM or numpy.
    probe = (
        "import sys, contextlib, io\n"
        "import routeiq.settings\n"
        "routing = sorted(m for m in sys.modules if m.startswith('routeiq.routing.'))\n"
        "assert routing == ['routeiq.routing.catalogue'], routing\n"
        "from routeiq.cli import main\n"
        "out = io.StringIO()\n"
        "with contextlib.redirect_stdout(out):\n"
        "    assert main(['strategies']) == 0\n"
        "for heavy in ('litellm', 'numpy'):\n"
        "    assert heavy not in sys.modules, heavy + ' was imported'\n"
        "print(out.getvalue())\n"
    )
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert [line.split()[0] for line in lines if line] == strategy_names()
    assert any(line.startswith(DEFAULT_STRATEGY) and line.endswith("(default)") for line in lines)
