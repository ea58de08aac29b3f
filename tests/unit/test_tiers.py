"""Verdicts, profiles, signals and session floors turned into the tier a request gets."""

from __future__ import annotations

from routeiq.routing.deployments import DeploymentTable
from routeiq.routing.profiles import nearest_tier, wanted_tier
from routeiq.routing.scoring import length_rule
from routeiq.routing.signals import read_signals
from routeiq.routing.strategy import Assessment
from routeiq.settings import DeploymentConfig

SIMPLE = Assessment(0.1, "conversation", 0.9, "centroid", complex=False, borderline=False)
COMPLEX = Assessment(0.9, "reasoning", 0.9, "centroid", complex=True, borderline=False)
CLOSE = Assessment(0.55, "analysis", 0.4, "centroid", complex=True, borderline=True)
PLAIN = read_signals({"messages": [{"role": "user", "content": "hi"}]})


def table(*tiers: str):  # type: ignore[no-untyped-def]
    entries = [
        {
            "model_name": "g",
            "litellm_params": {"model": f"openai/{tier}"},
            "model_info": {"id": tier, "tier": tier},
        }
        for tier in tiers
    ]
    return DeploymentTable([DeploymentConfig.model_validate(entry) for entry in entries]).group("g")


def test_verdicts_map_onto_the_ladder() -> None:
    assert wanted_tier("auto", SIMPLE, PLAIN, None).tier == "budget"
    assert wanted_tier("auto", CLOSE, PLAIN, None).tier == "standard"  # a close call goes up, not down
    assert wanted_tier("auto", COMPLEX, PLAIN, None).tier == "premium"


def test_profiles() -> None:
    assert wanted_tier("eco", COMPLEX, PLAIN, None).tier == "standard"
    assert wanted_tier("premium", SIMPLE, PLAIN, None).tier == "premium"
    assert wanted_tier("free", COMPLEX, PLAIN, None).tier == "free"
    assert wanted_tier("reasoning", SIMPLE, PLAIN, None).tier == "reasoning"


def test_signals_raise_the_tier() -> None:
    agentic = read_signals({"messages": [{"role": "user", "content": "hi"}], "tools": [{"type": "function"}]})
    assert agentic.agentic and wanted_tier("auto", SIMPLE, agentic, None).tier == "standard"
    proof = read_signals({"messages": [{"role": "user", "content": "Prove it step by step."}]})
    assert proof.reasoning and wanted_tier("auto", SIMPLE, proof, None).tier == "reasoning"


def test_session_floor_never_lets_the_tier_drop() -> None:
    plan = wanted_tier("auto", SIMPLE, PLAIN, "premium")
    assert plan.tier == "premium" and "session" in plan.why


def test_nearest_tier_prefers_above_then_below() -> None:
    assert [d.id for d in nearest_tier(table("budget", "premium"), "standard")] == ["premium"]
    assert [d.id for d in nearest_tier(table("budget", "standard"), "premium")] == ["standard"]
    assert nearest_tier([], "budget") == []


def test_signals_read_vision_tool_results_and_size() -> None:
    signals = read_signals(
        {
            "messages": [
                {"role": "system", "content": "x" * 2500},
                {
                    "role": "user",
                    "content": [{"type": "text", "text": "what is this"}, {"type": "image_url"}],
                },
                {"role": "tool", "content": "42"},
            ]
        }
    )
    assert signals.vision and signals.tool_results and signals.long_system_prompt
    assert signals.text == "what is this" and signals.estimated_tokens > 600


def test_length_rule_is_the_documented_fallback() -> None:
    assert not length_rule("hi").complex
    assert length_rule("x" * 3000).complex and not length_rule("x" * 3000).borderline
