/** `slipway convert`: a build's raw disk in another format (qcow2, vmdk, vhd, vhdx, gce). */
import type { Command } from "commander";
import { IMAGE_FORMATS } from "../build/formats.ts";
import { formatTable, printJson } from "./output.ts";

export function register(program: Command): void {
  program
    .command("convert")
    .description("convert a build's disk image for a hypervisor or cloud (recorded in meta.json)")
    .requiredOption("--format <formats>", `comma-separated: ${IMAGE_FORMATS.join(", ")}`)
    .option("-b, --build <version>", "which build (default: latest)")
    .option("-w, --work-dir <dir>", "work dir holding builds/", ".")
    .option("--json", "print the artifacts as JSON")
    .action(async (opts: { format: string; build?: string; workDir: string; json?: boolean }) => {
      // Loaded here, not at startup: other commands need none of the conversion code.
      const [{ convertBuild }, { fmtBytes }] = await Promise.all([
        import("../build/convert.ts"),
        import("../build/progress.ts"),
      ]);
      const results = await convertBuild({
        workDir: opts.workDir,
        version: opts.build,
        formats: opts.format
          .split(",")
          .map((f) => f.trim())
          .filter(Boolean),
      });
      if (opts.json) printJson(results);
      else {
        process.stdout.write(
          `${formatTable(
            ["FORMAT", "FILE", "SIZE", "SHA256"],
            results.map((r) => [r.format ?? "", r.path, fmtBytes(r.size), r.sha256.slice(0, 16)]),
            new Set([2]),
          )}\n`,
        );
      }
    });
}
