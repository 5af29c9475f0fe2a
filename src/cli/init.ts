/** `slipway init`: start a work dir from an example image config. */
import type { Command } from "commander";
import { initWorkDir, listExamples } from "../build/init.ts";
import { printJson } from "./output.ts";

export function register(program: Command): void {
  program
    .command("init")
    .description("create a work dir with an example image config (slipway.yaml)")
    .argument("<dir>", "new or empty directory")
    .option(
      "--example <name>",
      `example to start from (${listExamples().join(", ")})`,
      "minimal-dev",
    )
    .option("--json", "print the result as JSON")
    .action((dir: string, opts: { example: string; json?: boolean }) => {
      const config = initWorkDir(dir, opts.example);
      if (opts.json) printJson({ config, example: opts.example });
      else process.stdout.write(`wrote ${config}\nnext: cd ${dir} && slipway build\n`);
    });
}
