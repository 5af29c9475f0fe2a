/** `slipway config render|validate`: provisioning configs (Ignition) for first boot. */
import { readFileSync, renameSync, rmSync, writeFileSync } from "node:fs";
import { basename, dirname, join } from "node:path";
import type { Command } from "commander";
import { InputError, SlipwayError } from "../errors.ts";
import type { OracleVerdict } from "../provision/oracle.ts";
import type { Diagnostic } from "../provision/source.ts";
import { printJson } from "./output.ts";

/** Loaded on use, not at startup: the renderer pulls in yaml and the schemas. */
async function provisioning() {
  const [render, source] = await Promise.all([
    import("../provision/render.ts"),
    import("../provision/source.ts"),
  ]);
  return { ...render, ...source };
}

export function register(program: Command): void {
  const config = program
    .command("config")
    .description("Author and check first-boot provisioning configs (Ignition)");

  config
    .command("render")
    .description("Render provisioning YAML or #cloud-config to Ignition JSON")
    .argument("<file>", "YAML (variant: slipway) or a file starting with #cloud-config")
    .option("-o, --output <file>", "write the Ignition JSON here instead of stdout")
    .option("--strict", "treat warnings as errors")
    .option(
      "--files-dir <dir>",
      "base directory for contents.local (default: the file's directory)",
    )
    .action(
      async (file: string, opts: { output?: string; strict?: boolean; filesDir?: string }) => {
        const { renderConfig, formatDiagnostic, ignitionJson } = await provisioning();
        const result = renderConfig(readInput(file), file, { filesDir: opts.filesDir });
        for (const d of result.diagnostics) process.stderr.write(`${formatDiagnostic(d)}\n`);
        const warnings = result.diagnostics.filter((d) => d.severity === "warning").length;
        if (!result.config) throw new InputError(`${file} has errors; nothing written`);
        if (opts.strict && warnings > 0) {
          throw new InputError(
            `${file} has ${warnings} warning(s) and --strict is set; nothing written`,
          );
        }
        const json = ignitionJson(result.config);
        if (opts.output) writeAtomically(opts.output, json);
        else process.stdout.write(json);
      },
    );

  config
    .command("validate")
    .description("Check an Ignition config (or provisioning YAML / #cloud-config)")
    .argument("<file>", "Ignition JSON, provisioning YAML or #cloud-config")
    .option("--json", "machine-readable verdict")
    .option(
      "--oracle",
      "also run ignition-validate on the (rendered) Ignition and show its verdict",
    )
    .action(async (file: string, opts: { json?: boolean; oracle?: boolean }) => {
      const { renderConfig, formatDiagnostic, ignitionJson } = await provisioning();
      const text = readInput(file);
      const result = renderConfig(text, file);
      const errors = result.diagnostics.filter((d) => d.severity === "error");
      const warnings = result.diagnostics.filter((d) => d.severity === "warning");
      let oracle: OracleVerdict | undefined;
      if (opts.oracle) {
        const { oracleAvailable, runOracle } = await import("../provision/oracle.ts");
        if (!oracleAvailable()) {
          throw new InputError("ignition-validate is not installed (Debian package ignition)");
        }
        // Ignition input goes to the oracle as written; other inputs once they render.
        if (result.format === "ignition") oracle = runOracle(text);
        else if (result.config) oracle = runOracle(ignitionJson(result.config));
      }
      const ok = errors.length === 0 && (oracle?.ok ?? true);
      if (opts.json) {
        printJson({
          file,
          format: result.format,
          ok,
          version: (result.config?.ignition as { version?: string } | undefined)?.version ?? null,
          errors: errors.map(plain),
          warnings: warnings.map(plain),
          ...(oracle ? { ignitionValidate: { ok: oracle.ok, findings: oracle.findings } } : {}),
        });
      } else {
        for (const d of result.diagnostics) process.stdout.write(`${formatDiagnostic(d)}\n`);
        if (oracle) {
          process.stdout.write(`ignition-validate: ${oracle.ok ? "ok" : "rejected"}\n`);
          if (oracle.output) process.stdout.write(`${oracle.output}\n`);
        }
        process.stdout.write(
          ok
            ? `${file}: valid (${result.format}, ${warnings.length} warning(s))\n`
            : `${file}: invalid (${errors.length} error(s), ${warnings.length} warning(s))\n`,
        );
      }
      if (!ok) process.exitCode = 2;
    });
}

function readInput(file: string): string {
  try {
    return readFileSync(file, "utf8");
  } catch (e) {
    throw new InputError(`cannot read: ${(e as NodeJS.ErrnoException).code ?? e}`, { where: file });
  }
}

function plain(d: Diagnostic) {
  return { path: d.path, message: d.message, file: d.file, line: d.line, column: d.column };
}

/** Temp file in the same directory, then rename: never a half-written config. */
function writeAtomically(path: string, text: string): void {
  const tmp = join(dirname(path), `.${basename(path)}.${process.pid}.tmp`);
  try {
    writeFileSync(tmp, text);
    renameSync(tmp, path);
  } catch (e) {
    rmSync(tmp, { force: true });
    throw new SlipwayError(`cannot write: ${(e as NodeJS.ErrnoException).code ?? e}`, {
      where: path,
    });
  }
}
