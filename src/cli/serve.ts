/** `slipway serve`: the Omaha update service with channels, groups, rollout policy and FleetLock. */
import type { Command } from "commander";
import { InputError } from "../errors.ts";

interface ServeOpts {
  data: string;
  database?: string;
  listen: string;
  publicUrl?: string;
  secretPath?: string;
  pollInterval?: string;
  fleetlockSlots: string;
  rateLimit: string;
  retentionInstancesDays: string;
  retentionEventsDays: string;
  logLevel: string;
}

function positiveInt(value: string, flag: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0)
    throw new InputError(`${flag} must be a whole number, got "${value}"`);
  return n;
}

export function parseListen(listen: string): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(listen);
  if (!m) throw new InputError(`--listen must be HOST:PORT, got "${listen}"`);
  return { host: m[1] ?? m[2]!, port: positiveInt(m[3]!, "--listen port") };
}

export function register(program: Command): void {
  program
    .command("serve")
    .description("run the update service (Omaha v3, admin API, FleetLock, /metrics)")
    .option(
      "--data <dir>",
      "data directory: SQLite file, stored packages, admin-token",
      "./slipway-data",
    )
    .option("--database <url>", "postgres://… URL for PostgreSQL (default: SQLite in --data)")
    .option("--listen <host:port>", "address to listen on", "127.0.0.1:8080")
    .option("--public-url <url>", "base URL hosts use to reach this server (for package URLs)")
    .option("--secret-path <segment>", "serve Omaha only under /<segment>/v1/update/")
    .option(
      "--poll-interval <seconds>",
      "ask clients to check again after this long (PollInterval)",
    )
    .option("--fleetlock-slots <n>", "default reboot slots per FleetLock group", "1")
    .option("--rate-limit <n>", "admin API and FleetLock requests per minute per client", "600")
    .option("--retention-instances-days <n>", "forget hosts not seen for this many days", "30")
    .option(
      "--retention-events-days <n>",
      "drop events and activity older than this many days",
      "90",
    )
    .option("--log-level <level>", "JSON log level (fatal, error, warn, info, debug)", "info")
    .action(async (opts: ServeOpts) => {
      const { host, port } = parseListen(opts.listen);
      // Loaded here, not at startup: fastify, kysely and the database drivers are heavy.
      const { startServer } = await import("../server/server.ts");
      const server = await startServer({
        dataDir: opts.data,
        database: opts.database,
        host,
        port,
        publicUrl: opts.publicUrl,
        secretPath: opts.secretPath,
        pollIntervalS:
          opts.pollInterval === undefined
            ? undefined
            : positiveInt(opts.pollInterval, "--poll-interval"),
        fleetLockSlots: positiveInt(opts.fleetlockSlots, "--fleetlock-slots"),
        rateLimitPerMinute: positiveInt(opts.rateLimit, "--rate-limit"),
        retention: {
          instanceDays: positiveInt(opts.retentionInstancesDays, "--retention-instances-days"),
          eventDays: positiveInt(opts.retentionEventsDays, "--retention-events-days"),
        },
        logLevel: opts.logLevel,
      });
      if (server.initialToken) {
        process.stderr.write(
          `slipway serve: first start; admin token (also in ${opts.data}/admin-token):\n${server.initialToken}\n`,
        );
      }
      process.stderr.write(`slipway serve: listening on ${server.url} (${server.db.kind})\n`);
      await new Promise<void>((resolve) => {
        const stop = () => {
          process.off("SIGINT", stop);
          process.off("SIGTERM", stop);
          server.close().then(resolve, resolve);
        };
        process.on("SIGINT", stop);
        process.on("SIGTERM", stop);
      });
    });
}
