"""Reading an OpenAI chat-completions stream a whole event at a time: what the translators into
other APIs' stream formats (Anthropic Messages, OpenAI Responses) share."""

from __future__ import annotations

EVENT_END = b"\n\n"


class ChatEventReader:
    """Hands each ``data:`` payload of the whole events fed so far to ``_on_data`` and returns what
    it made of them; once ``_finished`` is set, nothing more is read."""

    _buffer = b""
    _finished = False

    def feed(self, data: bytes) -> bytes:
        self._buffer += data
        end = self._buffer.rfind(EVENT_END)
        if end < 0 or self._finished:
            return b""
        complete, self._buffer = self._buffer[:end], self._buffer[end + 2 :]
        out: list[bytes] = []
        for event in complete.split(EVENT_END):
            for line in event.split(b"\n"):
                if line.startswith(b"data:") and not self._finished:
                    out.append(self._on_data(line[5:].strip()))
        return b"".join(out)

    def _on_data(self, payload: bytes) -> bytes:
        raise NotImplementedError
