import { authHeaders } from "./client";
import { forgetKey } from "./auth";

// EventSource cannot send an Authorization header, and the admin key must never go in a URL:
// so the stream is read with fetch() and parsed here (the text/event-stream format, WHATWG HTML §9.2).

export interface ServerEvent {
  event: string;
  data: string;
}

export type StreamState = "connecting" | "open" | "retrying" | "closed";

/** Splits a byte stream into events; keeps the last `retry:` hint. */
export class EventStreamParser {
  private buffer = "";
  private event = "";
  private data: string[] = [];
  retryMs: number | null = null;

  /** Feed decoded text; returns the events completed by it. */
  feed(text: string): ServerEvent[] {
    this.buffer += text;
    const events: ServerEvent[] = [];
    let newline: number;
    while ((newline = this.buffer.search(/\r\n|\r|\n/)) >= 0) {
      const line = this.buffer.slice(0, newline);
      const width = this.buffer.startsWith("\r\n", newline) ? 2 : 1;
      this.buffer = this.buffer.slice(newline + width);
      if (line === "") {
        if (this.data.length > 0) events.push({ event: this.event || "message", data: this.data.join("\n") });
        this.event = "";
        this.data = [];
        continue;
      }
      if (line.startsWith(":")) continue; // a heartbeat comment
      const colon = line.indexOf(":");
      const field = colon < 0 ? line : line.slice(0, colon);
      let value = colon < 0 ? "" : line.slice(colon + 1);
      if (value.startsWith(" ")) value = value.slice(1);
      if (field === "event") this.event = value;
      else if (field === "data") this.data.push(value);
      else if (field === "retry" && /^\d+$/.test(value)) this.retryMs = Number(value);
    }
    return events;
  }
}

const DEFAULT_RETRY_MS = 3000;

/** Follow an SSE endpoint until `signal` aborts, reconnecting after the server's retry hint. */
export async function followEvents(
  path: string,
  onEvent: (event: ServerEvent) => void,
  onState: (state: StreamState, detail?: string) => void,
  signal: AbortSignal,
): Promise<void> {
  let retryMs = DEFAULT_RETRY_MS;
  while (!signal.aborted) {
    onState("connecting");
    const parser = new EventStreamParser();
    let detail: string | undefined;
    try {
      const response = await fetch(path, {
        headers: { Accept: "text/event-stream", ...authHeaders() },
        cache: "no-store",
        signal,
      });
      if (response.status === 401) {
        forgetKey(true);
        return;
      }
      if (!response.ok || !response.body) {
        detail = `stream answered ${response.status}`;
      } else {
        onState("open");
        const reader = response.body.pipeThrough(new TextDecoderStream()).getReader();
        for (;;) {
          const { value, done } = await reader.read();
          if (done) break;
          for (const event of parser.feed(value)) onEvent(event);
          if (parser.retryMs !== null) retryMs = parser.retryMs;
        }
        detail = "stream ended";
      }
    } catch (error) {
      if (signal.aborted) break;
      detail = error instanceof Error ? error.message : String(error);
    }
    if (signal.aborted) break;
    onState("retrying", detail);
    await new Promise<void>((resolve) => {
      const timer = setTimeout(resolve, retryMs);
      signal.addEventListener("abort", () => { clearTimeout(timer); resolve(); }, { once: true });
    });
  }
  onState("closed");
}
