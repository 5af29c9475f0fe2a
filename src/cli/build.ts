/** `slipway build`: one image config becomes builds/<version>/ (see src/build/pipeline.ts). */
import { resolve } from "node:path";
import type { Command } from "commander";
import { chooseMode, createReporter } from "../build/progress.ts";
import { DEFAULT_CONFIG_NAME } from "../config/names.ts";
import { InputError } from "../errors.ts";

interface BuildFlags {
  config: string;
  workDir?: string;
  force?: boolean;
  updateLock?: boolean;
  cacheKeep: string;
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
    .option(
      "--cache-keep <n>",
      "entries each stage keeps in the cache (raise it when several configs share one cache; env SLIPWAY_CACHE_KEEP)",
      process.env.SLIPWAY_CACHE_KEEP ?? "3",
    )
    .option("--json", "progress and result as JSON lines on stdout")
    .action(async (flags: BuildFlags) => {
      // Loaded here, not at startup: other commands need none of the build code.
      const cacheKeep = Number(flags.cacheKeep);
      if (!Number.isInteger(cacheKeep) || cacheKeep < 1)
        throw new InputError(
          `--cache-keep (or SLIPWAY_CACHE_KEEP): expected a whole number ≥ 1, got "${flags.cacheKeep}"`,
        );
      const { build } = await import("../build/pipeline.ts");
      const reporter = createReporter(chooseMode(flags.json ?? false));
      try {
        const outcome = await build({
          configPath: resolve(flags.config),
          workDir: flags.workDir,
          force: flags.force,
          updateLock: flags.updateLock,
          cacheKeep,
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
