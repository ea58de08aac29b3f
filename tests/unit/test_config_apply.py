"""Config apply's pure parts: redaction, secrets kept through ``***``, the diff, located problems,
restart-only settings, and the live-change hand-over from one runtime's parts to the next."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from routeiq.config import DocumentInvalid, settings_from_document
from routeiq.config_document import (
    REDACTED,
    changed_paths,
    is_secret_name,
    redact,
    restart_problems,
    restore_secrets,
    unified_diff,
)
from routeiq.settings import Settings
from routeiq.state.changes import Change, LiveChanges
from routeiq.state.memory import MemoryStateStore


def deployment(group: str, key: str, base: str = "http://up/v1", **info: Any) -> dict[str, Any]:
    entry: dict[str, Any] = {
        "model_name": group,
        "litellm_params": {"model": f"openai/{group}", "api_base": base, "api_key": key},
    }
    if info:
        entry["model_info"] = info
    return entry


def test_secret_names() -> None:
    for name in (
        "api_key",
        "master_key",
        "admin_keys",
        "router_hmac_key",
        "aws_secret_access_key",
        "Authorization",
        "x-api-key",
        "password",
        "aws_session_token",
    ):
        assert is_secret_name(name), name
    for name in (
        "key_cache_seconds",
        "redis_key_prefix",
        "input_cost_per_token",
        "default_max_tokens",
        "api_base",
        "model",
    ):
        assert not is_secret_name(name), name


def test_redaction_keeps_references_and_hides_secrets_and_url_passwords() -> None:
    document = {
        "model_list": [deployment("a", "sk-live"), deployment("b", "os.environ/B_KEY")],
        "routeiq": {
            "admin_keys": ["sk-admin-1", "sk-admin-2"],
            "redis_url": "redis://:hunter2@cache:6379/0",
            "database_url": "postgresql://db:5432/routeiq",
            "key_cache_seconds": 5,
        },
    }
    shown = redact(document)
    assert shown["model_list"][0]["litellm_params"]["api_key"] == REDACTED
    assert shown["model_list"][1]["litellm_params"]["api_key"] == "os.environ/B_KEY"
    assert shown["routeiq"]["admin_keys"] == [REDACTED, REDACTED]
    assert shown["routeiq"]["redis_url"] == REDACTED
    assert shown["routeiq"]["database_url"] == "postgresql://db:5432/routeiq"  # no password in it
    assert shown["routeiq"]["key_cache_seconds"] == 5
    assert "sk-live" not in unified_diff(None, document) and "hunter2" not in unified_diff(None, document)


def test_stars_keep_each_secret_with_its_owner_when_the_list_is_reordered() -> None:
    current = {"model_list": [deployment("a", "sk-a", id="a1"), deployment("b", "sk-b")]}
    submitted = redact({"model_list": [current["model_list"][1], current["model_list"][0]]})
    submitted["model_list"].append(deployment("c", "sk-new"))
    restored = restore_secrets(submitted, current)
    keys = [entry["litellm_params"]["api_key"] for entry in restored["model_list"]]
    assert keys == ["sk-b", "sk-a", "sk-new"]

    orphan = {"model_list": [deployment("z", REDACTED)]}
    with pytest.raises(DocumentInvalid) as refused:
        restore_secrets(orphan, current)
    assert [problem.path for problem in refused.value.problems] == ["model_list.0.litellm_params.api_key"]


def test_changed_paths_list_a_changed_secret_without_showing_it() -> None:
    old = {"model_list": [deployment("a", "sk-old")], "router_settings": {"num_retries": 1}}
    new = {"model_list": [deployment("a", "sk-new")], "router_settings": {"num_retries": 2}}
    assert changed_paths(old, new) == [
        {"path": "model_list.0.litellm_params.api_key", "old": REDACTED, "new": REDACTED},
        {"path": "router_settings.num_retries", "old": 1, "new": 2},
    ]


def problems_of(text: str, environ: dict[str, str] | None = None) -> dict[str, str]:
    with pytest.raises(DocumentInvalid) as invalid:
        settings_from_document(text, Path.cwd(), environ or {})
    return {problem.path: problem.message for problem in invalid.value.problems}


def test_problems_carry_their_path_in_the_document() -> None:
    document = {
        "model_list": [deployment("a", "os.environ/MISSING_KEY")],
        "router_settings": {"num_retries": -1, "group_strategies": {"nope": "simple-shuffle"}},
        "routeiq": {"port": "eighty", "colour": "blue"},
    }
    problems = problems_of(yaml.safe_dump(document))
    assert "refers to environment variable MISSING_KEY" in problems["model_list.0.litellm_params.api_key"]
    assert problems["routeiq.port"].startswith("expected a whole number")
    assert problems["routeiq.colour"].startswith("unknown key")
    assert "at least 0" in problems["router_settings.num_retries"]

    crossed = {**document, "router_settings": {"group_strategies": {"x": "simple-shuffle"}}, "routeiq": {}}
    groups = problems_of(yaml.safe_dump(crossed), {"MISSING_KEY": "k"})
    assert "unknown group 'x'" in groups["router_settings.group_strategies"]

    (syntax,) = settings_problems_raw("routeiq:\n  port: 1: 2\n")
    assert syntax.line == 2 and syntax.path == ""


def settings_problems_raw(text: str) -> list[Any]:
    with pytest.raises(DocumentInvalid) as invalid:
        settings_from_document(text, Path.cwd(), {})
    return invalid.value.problems


def test_the_environment_keeps_its_precedence_over_a_document() -> None:
    settings = settings_from_document("routeiq: {port: 4100}", Path.cwd(), {"ROUTEIQ_PORT": "4200"})
    assert settings.port == 4200


def test_restart_only_settings_are_named() -> None:
    running = Settings()
    wanted = Settings(port=4001)
    assert [problem.path for problem in restart_problems(running, wanted)] == ["routeiq.port"]
    assert restart_problems(running, Settings(max_request_body_bytes=2048)) == []


async def test_a_rebuild_hands_each_subject_over_to_the_new_parts() -> None:
    store = MemoryStateStore()
    here, there = LiveChanges(store, "here"), LiveChanges(store, "there")
    old_seen: list[Change] = []
    new_seen: list[Change] = []
    config_seen: list[Change] = []
    here.watch("strategy", old_seen.append)
    here.watch("breaker.gone", old_seen.append)
    here.watch("config", config_seen.append, lasting=True)
    for process in (there,):
        process.watch("strategy", lambda change: None)
        process.watch("breaker.new", lambda change: None)
    await here.start()
    await there.start()
    await there.publish("strategy", {"default": "cost"})
    await there.publish("breaker.new", {"opened_at": 1.0})
    await here.resync()
    assert [change.value for change in old_seen] == [{"default": "cost"}]

    here.begin_rebuild()
    here.watch("strategy", new_seen.append)  # the new runtime's parts
    here.watch("breaker.new", new_seen.append)
    await here.commit_rebuild()
    # The new part learns what the cluster changed; the new subject catches up; the old one is gone.
    assert [(change.subject, change.value) for change in new_seen] == [
        ("strategy", {"default": "cost"}),
        ("breaker.new", {"opened_at": 1.0}),
    ]
    assert set(here.applied()) == {"strategy", "breaker.new", "config"}
    await there.publish("strategy", {"default": "latency"})
    await here.resync()
    assert new_seen[-1].value == {"default": "latency"} and len(old_seen) == 1

    here.begin_rebuild()
    here.watch("strategy", old_seen.append)
    here.abort_rebuild()  # a runtime that did not build changes nothing
    assert set(here.applied()) == {"strategy", "breaker.new", "config"}
    await here.close()
    await there.close()
