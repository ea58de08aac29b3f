"""The passthrough executor's SSE framing: whole events out, usage read and dropped when unasked."""

from __future__ import annotations

import orjson
import pytest

from routeiq.executors.passthrough import _EventFramer


def event(payload: object) -> bytes:
    return b"data: " + orjson.dumps(payload) + b"\n\n"


CONTENT = [
    event({"choices": [{"index": 0, "delta": {"content": word}}], "usage": None}) for word in ("a", "b")
]
USAGE = event({"choices": [], "usage": {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}})
STREAM = b"".join([*CONTENT, USAGE, b"data: [DONE]\n\n"])


def replay(framer: _EventFramer, pieces: list[bytes]) -> bytes:
    return b"".join(framer.feed(piece) for piece in pieces)


@pytest.mark.parametrize("keep_usage", [True, False])
def test_every_split_point_gives_the_same_events(keep_usage: bool) -> None:
    expected = STREAM if keep_usage else STREAM.replace(USAGE, b"")
    for cut in range(1, len(STREAM)):
        framer = _EventFramer(keep_usage)
        assert replay(framer, [STREAM[:cut], STREAM[cut:]]) == expected
        assert framer.usage == {"prompt_tokens": 3, "completion_tokens": 2, "total_tokens": 5}
        assert framer.done


def test_partial_event_is_held_back() -> None:
    framer = _EventFramer(keep_usage=True)
    assert framer.feed(CONTENT[0][:10]) == b""
    assert framer.feed(CONTENT[0][10:]) == CONTENT[0]
    assert not framer.done


def test_usage_null_chunks_are_forwarded_untouched() -> None:
    framer = _EventFramer(keep_usage=False)
    assert framer.feed(CONTENT[0]) == CONTENT[0]
    assert framer.usage is None
