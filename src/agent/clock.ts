/**
 * Time for the agent: the real clock in production, a manual one in tests so
 * schedules, backoff and reboot windows can be stepped through instantly.
 */
export interface Clock {
  now(): number;
  /** Run `fn` after `ms`; returns a cancel function. */
  schedule(ms: number, fn: () => void): () => void;
  sleep(ms: number): Promise<void>;
}

export const realClock: Clock = {
  now: () => Date.now(),
  schedule(ms, fn) {
    // setTimeout caps at 2^31-1 ms; longer waits are chained.
    let timer: NodeJS.Timeout;
    const MAX = 2 ** 31 - 1;
    const arm = (left: number) => {
      timer = setTimeout(() => (left > MAX ? arm(left - MAX) : fn()), Math.min(left, MAX));
    };
    arm(Math.max(0, ms));
    return () => clearTimeout(timer);
  },
  sleep(ms) {
    return new Promise((r) => realClock.schedule(ms, r));
  },
};

interface Pending {
  at: number;
  seq: number;
  fn: () => void;
}

/** A clock that only moves when the test says so. */
export class ManualClock implements Clock {
  private t: number;
  private seq = 0;
  private pending: Pending[] = [];

  constructor(startMs: number) {
    this.t = startMs;
  }

  now(): number {
    return this.t;
  }

  schedule(ms: number, fn: () => void): () => void {
    const p = { at: this.t + Math.max(0, ms), seq: this.seq++, fn };
    this.pending.push(p);
    return () => {
      this.pending = this.pending.filter((x) => x !== p);
    };
  }

  sleep(ms: number): Promise<void> {
    return new Promise((r) => this.schedule(ms, r));
  }

  /** Time of the next timer, if any. */
  nextAt(): number | undefined {
    return this.pending.reduce<number | undefined>(
      (m, p) => (m === undefined || p.at < m ? p.at : m),
      undefined,
    );
  }

  /** Move time forward, firing due timers in order and letting their promises settle. */
  async advance(ms: number): Promise<void> {
    const end = this.t + ms;
    for (;;) {
      await settle();
      const due = this.pending
        .filter((p) => p.at <= end)
        .sort((a, b) => a.at - b.at || a.seq - b.seq)[0];
      if (due === undefined) break;
      this.pending = this.pending.filter((p) => p !== due);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
    await settle();
  }
}

/** Let pending promise chains (and quick real I/O) run. */
async function settle(): Promise<void> {
  for (let i = 0; i < 5; i++) await new Promise((r) => setImmediate(r));
}
