/** Follow every change of one etcd key through the v3 gateway's streaming /v3/watch. */
export interface KeyWatch {
  values: string[];
  ready: Promise<void>;
  stop(): void;
}

export function watchKey(url: string, key: string): KeyWatch {
  const ac = new AbortController();
  const values: string[] = [];
  let markReady!: () => void;
  const ready = new Promise<void>((r) => {
    markReady = r;
  });
  (async () => {
    const res = await fetch(`${url}/v3/watch`, {
      method: "POST",
      body: JSON.stringify({ create_request: { key: Buffer.from(key).toString("base64") } }),
      signal: ac.signal,
    });
    const reader = res.body!.getReader();
    let buf = "";
    for (;;) {
      const { done, value } = await reader.read();
      if (done) return;
      buf += Buffer.from(value).toString("utf8");
      let nl = buf.indexOf("\n");
      while (nl >= 0) {
        const line = buf.slice(0, nl);
        buf = buf.slice(nl + 1);
        nl = buf.indexOf("\n");
        const msg = JSON.parse(line) as {
          result?: { created?: boolean; events?: { kv?: { value?: string } }[] };
        };
        if (msg.result?.created) markReady();
        for (const ev of msg.result?.events ?? []) {
          values.push(Buffer.from(ev.kv?.value ?? "", "base64").toString("utf8"));
        }
      }
    }
  })().catch(() => {
    // aborted at stop()
  });
  return { values, ready, stop: () => ac.abort() };
}
