/**
 * Agent footprint: the bundled agent on the image's Node 20 (/usr/bin/node),
 * idle against a stand-in host for N seconds (default 30) after its first
 * check. Reports RSS (from /proc/<pid>/status) and CPU time consumed while
 * idle (utime+stime from /proc/<pid>/stat). Budget: RSS ≤ 60 MB, CPU while
 * idle ≈ 0 (no busy polling).
 *   node bench/agent/idle.ts [seconds] [--json]
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { bundleAgent } from "../../scripts/bundle-agent.ts";
import { makeHost } from "../../test/agent/host-fixture.ts";
import { startOmaha } from "../../test/agent/omaha-fixture.ts";

const seconds = Number(process.argv.find((a) => /^\d+$/.test(a)) ?? 30);
const dir = mkdtempSync(join(tmpdir(), "slipway-agent-bench-"));
const bundle = join(dir, "slipway-agent.cjs");
await bundleAgent(bundle);
const omaha = await startOmaha();
const host = makeHost();
host.writeConf([`SERVER=${omaha.url}/v1/update/`, "REBOOT_STRATEGY=off"]);
const ticks = 100; // USER_HZ on Linux
const cpuMs = (pid: number) => {
  const f = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
  return ((Number(f[11]) + Number(f[12])) * 1000) / ticks;
};
const rssKb = (pid: number) =>
  Number(/VmRSS:\s+(\d+)/.exec(readFileSync(`/proc/${pid}/status`, "utf8"))?.[1] ?? 0);

// slipway-agent.service runs node without flags; AGENT_NODE_FLAGS tries others.
const nodeFlags = (process.env.AGENT_NODE_FLAGS ?? "").split(" ").filter(Boolean);
const child = spawn(
  "/usr/bin/node",
  [
    ...nodeFlags,
    bundle,
    "agent",
    "--root",
    host.root,
    "--disk",
    "disk.img",
    "--check-now",
    "--system-state",
    "running",
  ],
  { stdio: ["ignore", "ignore", "pipe"] },
);
let log = "";
child.stderr.on("data", (d: Buffer) => {
  log += d.toString();
});
const t0 = Date.now();
while (!/no-update/.test(log)) {
  if (Date.now() - t0 > 20_000) throw new Error(`agent did not check: ${log}`);
  await new Promise((r) => setTimeout(r, 50));
}
const pid = child.pid!;
const cpuStart = cpuMs(pid);
let maxRss = 0;
const samples: number[] = [];
for (let i = 0; i < seconds; i++) {
  await new Promise((r) => setTimeout(r, 1000));
  const r = rssKb(pid);
  samples.push(r);
  maxRss = Math.max(maxRss, r);
}
const idleCpu = cpuMs(pid) - cpuStart;
child.kill("SIGTERM");
await new Promise((r) => child.once("exit", r));
await omaha.stop();
host.cleanup();
rmSync(dir, { recursive: true, force: true });

const result = {
  node: `/usr/bin/node ${nodeFlags.join(" ")}`,
  idleSeconds: seconds,
  rssMaxMB: +(maxRss / 1024).toFixed(1),
  rssEndMB: +((samples.at(-1) ?? 0) / 1024).toFixed(1),
  idleCpuMs: idleCpu,
  idleCpuPercent: +((100 * idleCpu) / (seconds * 1000)).toFixed(3),
  budget: { rssMB: 60 },
  ok: maxRss / 1024 <= 60 && idleCpu <= seconds * 10,
};
if (process.argv.includes("--json")) process.stdout.write(`${JSON.stringify(result)}\n`);
else {
  process.stdout.write(
    `agent idle ${seconds}s on Node 20: RSS max ${result.rssMaxMB} MB (budget 60), CPU ${idleCpu} ms (${result.idleCpuPercent}%) — ${result.ok ? "OK" : "OVER BUDGET"}\n`,
  );
}
process.exitCode = result.ok ? 0 : 1;
