/** `slipway build`: one image config becomes builds/<version>/ (see src/build/pipeline.ts). */
import { resolve } from "node:path";
import type { Command } from "commander";
import { chooseMode, createReporter } from "../build/progress.ts";
import { DEFAULT_CONFIG_NAME } from "../config/names.ts";

interface BuildFlags {
  config: string;
  workDir?: string;
  force?: boolean;
  updateLock?: boolean;
  json?: boolean;
}

export function register(program: Command): void {
  program
    .command("build")
    .description("build a bootable disk image, USR image and meta.json into builds/<version>/")
    .option("-c, --config <file>", "image config", DEFAULT_CONFIG_NAME)
    .option(
      "-w, --work-dir <dir>",
      "where builds/ and cache/ live (default: the config's directory)",
    )
    .option("-f, --force", "rebuild every stage even when nothing changed")
    .option("--update-lock", "resolve packages afresh instead of the versions in slipway.lock")
    .option("--json", "progress and result as JSON lines on stdout")
    .action(async (flags: BuildFlags) => {
      // Loaded here, not at startup: other commands need none of the build code.
      const { build } = await import("../build/pipeline.ts");
      const reporter = createReporter(chooseMode(flags.json ?? false));
      try {
        const outcome = await build({
          configPath: resolve(flags.config),
          workDir: flags.workDir,
          force: flags.force,
          updateLock: flags.updateLock,
          reporter,
        });
        if (flags.json) {
          const { meta, ...rest } = outcome;
          // One line, like the progress events before it (JSON lines).
          process.stdout.write(
            `${JSON.stringify({ type: "result", ...rest, artifacts: meta?.artifacts ?? {} })}\n`,
          );
        }
      } finally {
        reporter.close();
      }
    });
}
