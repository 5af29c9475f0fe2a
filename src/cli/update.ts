/** `slipway update status|check|reset`: talk to the running agent over its socket. */
import type { Command } from "commander";
import type { AgentStatus } from "../agent/agent.ts";
import type { ControlRequest } from "../agent/control.ts";
import { SlipwayError } from "../errors.ts";
import { printJson } from "./output.ts";

interface UpdateOpts {
  root: string;
  socket?: string;
  json?: boolean;
  wait?: boolean;
}

async function ask(opts: UpdateOpts, req: ControlRequest): Promise<AgentStatus> {
  // Loaded here, not at startup: other commands need none of the agent code.
  const [{ control }, { hostLayout }] = await Promise.all([
    import("../agent/control.ts"),
    import("../agent/layout.ts"),
  ]);
  const path = opts.socket ?? hostLayout(opts.root).socketPath;
  const a = await control(path, req);
  if (!a.ok) throw new SlipwayError(a.error, { where: path });
  return a.status as AgentStatus;
}

function show(s: AgentStatus, json: boolean | undefined): void {
  if (json) {
    printJson(s);
    return;
  }
  const lines: [string, string | undefined][] = [
    ["state", s.state],
    ["current version", `${s.currentVersion} (slot ${s.bootedSlot})`],
    ["last check", s.lastCheck ? `${s.lastCheck} — ${s.lastCheckResult ?? ""}` : "never"],
    ["next check", s.nextCheck],
    ["new version", s.newVersion],
    ["new size", s.newSize === undefined ? undefined : `${s.newSize} bytes`],
    [
      "progress",
      s.progress
        ? `${((100 * s.progress.done) / Math.max(1, s.progress.total)).toFixed(1)}%`
        : undefined,
    ],
    ["reboot strategy", s.strategy],
    ["waiting for", s.waitingFor],
    ["last error", s.lastError],
    ["failed versions", s.failedVersions.length ? s.failedVersions.join(", ") : undefined],
  ];
  for (const [k, v] of lines)
    if (v !== undefined) process.stdout.write(`${`${k}:`.padEnd(17)}${v}\n`);
  const recent = s.history.slice(-5);
  if (recent.length) {
    process.stdout.write("recent transitions:\n");
    for (const t of recent) {
      process.stdout.write(
        `  ${t.at}  ${t.from} → ${t.to} (${t.event}${t.detail ? `: ${t.detail}` : ""})\n`,
      );
    }
  }
}

export function register(program: Command): void {
  const update = program.command("update").description("ask the local update agent");
  const common = (c: Command) =>
    c
      .option("--root <dir>", "host root prefix", "/")
      .option("--socket <path>", "agent control socket (default <root>/run/slipway/agent.sock)")
      .option("--json", "machine-readable output");
  common(update.command("status"))
    .description("state, last check, progress, new version and size")
    .action(async (opts: UpdateOpts) => show(await ask(opts, { cmd: "status" }), opts.json));
  common(update.command("check"))
    .description("check for an update now")
    .option("--wait", "wait until the check cycle (and any download and install) ends")
    .action(async (opts: UpdateOpts) =>
      show(await ask(opts, { cmd: "check", wait: opts.wait === true }), opts.json),
    );
  common(update.command("reset"))
    .description("undo a staged update, forget failed versions and back-off")
    .action(async (opts: UpdateOpts) => show(await ask(opts, { cmd: "reset" }), opts.json));
}
