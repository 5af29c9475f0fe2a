/** Load data and keep it fresh by polling; a failed poll keeps the last data and shows the error. */
import { useCallback, useEffect, useRef, useState } from "react";

export interface Polled<T> {
  data: T | undefined;
  error: string | null;
  reload(): void;
}

export function usePoll<T>(load: () => Promise<T>, deps: unknown[], intervalMs = 2000): Polled<T> {
  const [data, setData] = useState<T>();
  const [error, setError] = useState<string | null>(null);
  const [tick, setTick] = useState(0);
  const loadRef = useRef(load);
  loadRef.current = load;
  const reload = useCallback(() => setTick((t) => t + 1), []);

  // Other inputs (another group, another filter): drop what was shown for the old ones.
  useEffect(() => {
    setData(undefined);
    setError(null);
  }, [...deps]);

  // biome-ignore lint/correctness/useExhaustiveDependencies: deps are the caller's inputs; tick forces a reload
  useEffect(() => {
    let live = true;
    let timer: ReturnType<typeof setTimeout> | undefined;
    const run = async () => {
      try {
        const v = await loadRef.current();
        if (!live) return;
        setData(v);
        setError(null);
      } catch (err) {
        if (live) setError((err as Error).message);
      }
      if (live && intervalMs > 0) timer = setTimeout(run, intervalMs);
    };
    run();
    return () => {
      live = false;
      if (timer) clearTimeout(timer);
    };
  }, [...deps, tick, intervalMs]);

  return { data, error, reload };
}
