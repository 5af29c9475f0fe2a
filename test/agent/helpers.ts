/** Shared setup for agent tests: a host, an Omaha fixture, keys and an Agent on a manual clock. */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { Agent, type AgentDeps } from "../../src/agent/agent.ts";
import { ManualClock } from "../../src/agent/clock.ts";
import { loadConfig } from "../../src/agent/config.ts";
import { hostLayout } from "../../src/agent/layout.ts";
import { readMachineId } from "../../src/agent/machine-id.ts";
import { payloadLibraryEngine } from "../../src/agent/payload-engine.ts";
import type { PayloadEngine } from "../../src/agent/payload-port.ts";
import type { HostFixture } from "./host-fixture.ts";
import { keys } from "./payloads.ts";

export function installKey(host: HostFixture): void {
  writeFileSync(join(host.root, "usr/share/slipway/update-signing.pem"), keys.publicPem);
}

export interface Harness {
  agent: Agent;
  clock: ManualClock;
  logs: string[];
  reboots: number;
}

export function makeAgent(
  host: HostFixture,
  opts: {
    clock?: ManualClock;
    payload?: PayloadEngine;
    systemState?: string;
    extra?: Partial<AgentDeps>;
  } = {},
): Harness {
  const clock = opts.clock ?? new ManualClock(Date.UTC(2026, 10, 26, 12, 0, 0));
  const h: Harness = { agent: undefined as unknown as Agent, clock, logs: [], reboots: 0 };
  h.agent = new Agent({
    config: loadConfig(host.root),
    layout: hostLayout(host.root, { disk: "disk.img" }),
    clock,
    payload:
      opts.payload ?? payloadLibraryEngine({ journalDir: join(host.root, "var/lib/slipway") }),
    machineId: readMachineId(host.root),
    systemState: async () => opts.systemState ?? "running",
    rebootNow: async () => {
      h.reboots++;
    },
    log: (l) => h.logs.push(l),
    schedule: { random: () => 0.5 },
    utc: true,
    warn: async () => {},
    ...opts.extra,
  });
  return h;
}

export async function until(cond: () => boolean, what: string, ms = 10_000): Promise<void> {
  const end = Date.now() + ms;
  while (!cond()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 10));
  }
}

export function fileEquals(path: string, data: Buffer): boolean {
  return readFileSync(path).subarray(0, data.length).equals(data);
}
