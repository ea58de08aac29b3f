"""The config history on both stores: the newest applied document is what a restart serves."""

from __future__ import annotations

import pytest

from routeiq.store.config_history import ConfigHistory, ConfigVersion
from routeiq.store.database import Database


@pytest.fixture
async def history(db: Database) -> ConfigHistory:
    return ConfigHistory(db)


def version(document: str, at: float) -> ConfigVersion:
    return ConfigVersion(0, at, "key:admin", "api", document, f"sha-{document}", "sha-file")


async def test_the_newest_version_is_the_last_added_and_a_removed_one_is_gone(history: ConfigHistory) -> None:
    assert await history.newest() is None
    first = await history.add(version("model_list: []", 1.0))
    second = await history.add(version("routeiq: {}", 2.0))
    assert second > first
    newest = await history.newest()
    assert newest is not None and (newest.id, newest.document, newest.file_sha256) == (
        second,
        "routeiq: {}",
        "sha-file",
    )
    await history.remove(second)  # an announcement that failed
    newest = await history.newest()
    assert newest is not None and newest.id == first
