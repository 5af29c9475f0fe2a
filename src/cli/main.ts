/**
 * The `slipway` command: wiring only. Each command group lives in its own
 * module and exports `register(program)`; the work happens in src/<area>/.
 */
import { Command, CommanderError } from "commander";
import { EXIT_FAILURE, EXIT_USAGE, SlipwayError } from "../errors.ts";
import { commandGroups } from "./groups.ts";

export function buildProgram(): Command {
  const program = new Command("slipway")
    .description("Build immutable, self-updating Linux images and keep fleets of them current.")
    .version(process.env.npm_package_version ?? "0.1.0")
    .showHelpAfterError()
    // Global options only before the subcommand: `slipway publish --version 2.0` is the subcommand's.
    .enablePositionalOptions()
    .exitOverride();
  for (const register of commandGroups) register(program);
  return program;
}

export async function main(argv: string[]): Promise<number> {
  const program = buildProgram();
  try {
    await program.parseAsync(argv, { from: "user" });
    return process.exitCode === undefined ? 0 : Number(process.exitCode);
  } catch (err) {
    if (err instanceof CommanderError) {
      // --help and --version end through here with exit code 0.
      return err.exitCode === 0 ? 0 : EXIT_USAGE;
    }
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

if (import.meta.main) {
  main(process.argv.slice(2)).then((code) => {
    process.exitCode = code;
  });
}
