/** `slipway simulate`: a fleet of simulated hosts checking in with an update server. */
import type { Command } from "commander";
import { InputError } from "../errors.ts";
import { printJson } from "./output.ts";

interface SimOpts {
  server: string;
  app: string;
  track: string;
  hosts: string;
  version: string;
  rounds: string;
  until?: string;
  interval: string;
  rollbackRate: string;
  concurrency: string;
  secretPath?: string;
  json?: boolean;
}

function num(v: string, flag: string, min = 0): number {
  const n = Number(v);
  if (!Number.isFinite(n) || n < min)
    throw new InputError(`${flag} must be a number ≥ ${min}, got "${v}"`);
  return n;
}

export function register(program: Command): void {
  program
    .command("simulate")
    .description(
      "simulate hosts checking in, downloading, installing and rebooting (drives rollouts)",
    )
    .requiredOption("--server <url>", "update server base URL, e.g. http://127.0.0.1:8080")
    .requiredOption("--app <id>", "application id (Omaha appid)")
    .option("--track <name>", "group track the hosts send", "stable")
    .option("--hosts <n>", "number of hosts", "100")
    .option("--version <v>", "version the hosts start on", "0.0.0")
    .option("--rounds <n>", "stop after this many rounds", "100")
    .option("--until <version>", "stop once every host runs this version")
    .option("--interval <ms>", "pause between rounds", "0")
    .option("--rollback-rate <p>", "probability that a reboot rolls back (0..1)", "0")
    .option("--concurrency <n>", "requests in flight", "16")
    .option("--secret-path <segment>", "the server's Omaha secret path")
    .option("--json", "print the final summary as JSON")
    .action(async (o: SimOpts) => {
      const { Fleet } = await import("../server/fleet-sim.ts");
      const base = o.server.replace(/\/$/, "");
      const prefix = o.secretPath ? `/${o.secretPath}` : "";
      const fleet = new Fleet({
        endpoint: `${base}${prefix}/v1/update/`,
        appId: o.app,
        track: o.track,
        hosts: num(o.hosts, "--hosts", 1),
        startVersion: o.version,
        rollbackRate: num(o.rollbackRate, "--rollback-rate"),
        concurrency: num(o.concurrency, "--concurrency", 1),
      });
      const rounds = num(o.rounds, "--rounds", 1);
      const interval = num(o.interval, "--interval");
      const totals = { requests: 0, failures: 0, granted: 0, completed: 0, rolledBack: 0 };
      let round = 0;
      for (; round < rounds; round++) {
        const s = await fleet.round();
        for (const k of Object.keys(totals) as (keyof typeof totals)[]) totals[k] += s[k];
        const versions = fleet.versions();
        process.stderr.write(
          `round ${round + 1}: ${s.requests} requests, ${s.failures} failed, ${s.granted} granted, ${s.completed} completed, ${s.rolledBack} rolled back; versions ${JSON.stringify(versions)}\n`,
        );
        if (o.until && versions[o.until] === fleet.hosts.length) {
          round++;
          break;
        }
        if (interval > 0) await new Promise((r) => setTimeout(r, interval));
      }
      const summary = { rounds: round, ...totals, versions: fleet.versions() };
      if (o.json) printJson(summary);
      else process.stdout.write(`${JSON.stringify(summary)}\n`);
      if (o.until && summary.versions[o.until] !== fleet.hosts.length) process.exitCode = 1;
    });
}
