/**
 * Runs one agent in its own process for crash tests (`kill -9` mid-write):
 * real clock, the fixture payload engine slowed down, "reboot" = exit 0
 * after printing REBOOT. Usage: node agent-child.ts <root>
 */
import { Agent } from "../../src/agent/agent.ts";
import { realClock } from "../../src/agent/clock.ts";
import { loadConfig } from "../../src/agent/config.ts";
import { hostLayout } from "../../src/agent/layout.ts";
import { readMachineId } from "../../src/agent/machine-id.ts";
import { fixtureEngine } from "./fixture-payload.ts";

const root = process.argv[2]!;
const agent = new Agent({
  config: loadConfig(root),
  layout: hostLayout(root, { disk: "disk.img" }),
  clock: realClock,
  payload: fixtureEngine({ chunkDelayMs: 20 }),
  machineId: readMachineId(root),
  systemState: async () => "running",
  rebootNow: async () => {
    process.stdout.write("REBOOT\n");
    process.exit(0);
  },
  log: (l) => process.stderr.write(`${l}\n`),
});
await agent.start({ checkNow: true });
