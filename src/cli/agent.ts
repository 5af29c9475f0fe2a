/** `slipway agent`: run the on-host update daemon (systemd: slipway-agent.service). */
import type { Command } from "commander";
import { SlipwayError } from "../errors.ts";

interface AgentOpts {
  root: string;
  disk?: string;
  esp?: string;
  checkNow?: boolean;
  once?: boolean;
  rebootCommand: string;
  systemState?: string;
}

export function register(program: Command): void {
  program
    .command("agent")
    .description(
      "run the update agent: check, download, write the passive slot, reboot under a lock",
    )
    .option("--root <dir>", "host root prefix (tests use a directory standing in for a host)", "/")
    .option("--disk <path>", "whole disk holding the GPT mirror (relative to --root)")
    .option("--esp <path>", "ESP partition, image or directory (relative to --root)")
    .option("--check-now", "check for an update at once instead of after 7 ± 5 min")
    .option("--once", "exit after the first check cycle (staged or not), without rebooting")
    .option("--reboot-command <cmd>", "command that reboots the host", "systemctl reboot")
    .option(
      "--system-state <word>",
      "skip `systemctl is-system-running` and use this state (for tests)",
    )
    .action(async (opts: AgentOpts) => {
      // Loaded here, not at startup: only the daemon needs the agent and payload code.
      const [
        { Agent },
        { realClock },
        { loadConfig },
        { serveControl },
        { runCommand, systemctlProbe },
        { hostLayout },
        { readMachineId },
        { payloadLibraryEngine },
      ] = await Promise.all([
        import("../agent/agent.ts"),
        import("../agent/clock.ts"),
        import("../agent/config.ts"),
        import("../agent/control.ts"),
        import("../agent/health.ts"),
        import("../agent/layout.ts"),
        import("../agent/machine-id.ts"),
        import("../agent/payload-engine.ts"),
      ]);
      const config = loadConfig(opts.root);
      const layout = hostLayout(opts.root, { disk: opts.disk, esp: opts.esp });
      const log = (line: string) => process.stderr.write(`${line}\n`);
      const [cmd, ...args] = opts.rebootCommand.split(/\s+/);
      const agent = new Agent({
        config,
        layout,
        clock: realClock,
        payload: payloadLibraryEngine({ journalDir: layout.stateDir }),
        machineId: readMachineId(opts.root),
        systemState: opts.systemState ? async () => opts.systemState! : systemctlProbe,
        log,
        rebootNow: async () => {
          if (opts.once) return;
          const r = await runCommand(cmd!, args, 60_000);
          if (r.code !== 0)
            throw new SlipwayError(`${opts.rebootCommand} failed: ${r.stderr.trim()}`);
        },
      });
      if (opts.once) {
        // Stopped before it starts: the boot phase runs, but no schedule and no reboot task.
        agent.stop();
        await agent.start({ checkNow: false });
        await agent.checkNowUnscheduled();
        const s = agent.status();
        process.stdout.write(`${s.state}${s.lastError ? `: ${s.lastError}` : ""}\n`);
        process.exitCode = s.lastError && s.state !== "updated-need-reboot" ? 1 : 0;
        return;
      }
      const server = await serveControl(agent, layout.socketPath);
      await agent.start({ checkNow: opts.checkNow });
      await new Promise<void>((resolve) => {
        const stop = () => {
          agent.stop();
          server.close();
          resolve();
        };
        process.once("SIGTERM", stop);
        process.once("SIGINT", stop);
      });
    });
}
