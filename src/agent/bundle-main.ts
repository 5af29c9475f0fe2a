/**
 * Entry point of the agent bundle (scripts/bundle-agent.ts): the `slipway`
 * commands an image needs — agent, update, lock, gpt (`slipway gpt show` of
 * the boot disk next to `cgpt show`) — and nothing that pulls in
 * the server or the build pipeline. Runs on the image's Node 20.
 */
import { Command, CommanderError } from "commander";
import { register as registerAgent } from "../cli/agent.ts";
import { register as registerGpt } from "../cli/gpt.ts";
import { register as registerLock } from "../cli/lock.ts";
import { register as registerUpdate } from "../cli/update.ts";
import { EXIT_FAILURE, EXIT_USAGE, SlipwayError } from "../errors.ts";

export async function agentMain(argv: string[]): Promise<number> {
  const program = new Command("slipway")
    .description("Slipway on-host tools: the update agent, its status, the fleet reboot lock.")
    .showHelpAfterError()
    .exitOverride();
  registerAgent(program);
  registerUpdate(program);
  registerLock(program);
  registerGpt(program);
  try {
    await program.parseAsync(argv, { from: "user" });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) return err.exitCode === 0 ? 0 : EXIT_USAGE;
    if (err instanceof SlipwayError) {
      process.stderr.write(`slipway: ${err.message}\n`);
      return err.exitCode;
    }
    process.stderr.write(
      `slipway: internal error: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`,
    );
    return EXIT_FAILURE;
  }
}

// `slipway update status | head` closes the pipe early: that is not an error.
process.stdout.on("error", (err: NodeJS.ErrnoException) => {
  if (err.code === "EPIPE") process.exit(0);
  throw err;
});

agentMain(process.argv.slice(2)).then((code) => {
  process.exitCode = code;
});
