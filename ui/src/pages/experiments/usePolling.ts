import { useCallback, useEffect, useRef, useState } from "react";

/** Load now and every `ms` while the tab is visible (hidden: no calls; shown again: at once);
 *  `ms` 0 loads once. One call at a time; the latest answer wins. */
export function usePolling<T>(load: (signal: AbortSignal) => Promise<T>, ms: number, deps: unknown[]) {
  const [data, setData] = useState<T | null>(null);
  const [error, setError] = useState<unknown>(null);
  const [tick, setTick] = useState(0);
  const loader = useRef(load);
  loader.current = load;
  useEffect(() => {
    const controller = new AbortController();
    let timer: number | undefined;
    let running = false;
    const run = async () => {
      window.clearTimeout(timer);
      if (controller.signal.aborted || running) return;
      if (document.visibilityState === "hidden") return; // resumed by the visibility listener
      running = true;
      try {
        const value = await loader.current(controller.signal);
        if (!controller.signal.aborted) { setData(value); setError(null); }
      } catch (reason) {
        if (!controller.signal.aborted) setError(reason);
      } finally {
        running = false;
        if (!controller.signal.aborted && ms > 0) timer = window.setTimeout(run, ms);
      }
    };
    const onVisibility = () => { if (document.visibilityState === "visible" && ms > 0) void run(); };
    document.addEventListener("visibilitychange", onVisibility);
    void run();
    return () => {
      controller.abort();
      window.clearTimeout(timer);
      document.removeEventListener("visibilitychange", onVisibility);
    };
    // eslint-disable-next-line react-hooks/exhaustive-deps
  }, [...deps, ms, tick]);
  const refresh = useCallback(() => setTick((value) => value + 1), []);
  return { data, error, refresh, setData };
}
