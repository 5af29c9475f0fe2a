/**
 * When to ask the server, update_engine-style: the first check a few minutes
 * after start (7 ± 5 min) so a booting fleet does not stampede, then every
 * 45 ± 5 min (or the server's PollInterval), doubling after server errors.
 */
export interface ScheduleOptions {
  firstMs?: number;
  firstJitterMs?: number;
  intervalMs?: number;
  intervalJitterMs?: number;
  maxBackoffMs?: number;
  random?: () => number;
}

const MIN = 60_000;

export class CheckSchedule {
  private readonly o: Required<ScheduleOptions>;
  /** Consecutive failed checks. */
  failures = 0;
  /** Seconds the server last asked for between checks. */
  pollIntervalSeconds: number | undefined;

  constructor(opts: ScheduleOptions = {}) {
    this.o = {
      firstMs: opts.firstMs ?? 7 * MIN,
      firstJitterMs: opts.firstJitterMs ?? 5 * MIN,
      intervalMs: opts.intervalMs ?? 45 * MIN,
      intervalJitterMs: opts.intervalJitterMs ?? 5 * MIN,
      maxBackoffMs: opts.maxBackoffMs ?? 4 * 60 * MIN,
      random: opts.random ?? Math.random,
    };
  }

  private jitter(spread: number): number {
    return (this.o.random() * 2 - 1) * spread;
  }

  firstDelay(): number {
    return Math.max(0, this.o.firstMs + this.jitter(this.o.firstJitterMs));
  }

  /** Delay after a successful check. */
  afterSuccess(pollIntervalSeconds?: number): number {
    this.failures = 0;
    if (pollIntervalSeconds !== undefined && pollIntervalSeconds > 0) {
      this.pollIntervalSeconds = pollIntervalSeconds;
    }
    const base =
      this.pollIntervalSeconds !== undefined ? this.pollIntervalSeconds * 1000 : this.o.intervalMs;
    return Math.max(1000, base + this.jitter(this.o.intervalJitterMs));
  }

  /** Delay after a failed check: the interval doubled per failure, capped. */
  afterFailure(): number {
    this.failures++;
    const base =
      this.pollIntervalSeconds !== undefined ? this.pollIntervalSeconds * 1000 : this.o.intervalMs;
    const backoff = Math.min(this.o.maxBackoffMs, base * 2 ** this.failures);
    // Jitter proportional to the wait so a fleet that failed together spreads out.
    return Math.max(1000, backoff + this.jitter(backoff / 10));
  }
}
