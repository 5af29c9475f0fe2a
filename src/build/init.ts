/**
 * `slipway init DIR`: a work dir with an example config to start from (like
 * `cosa init`). Copies one of examples/ and a .gitignore for the outputs.
 */
import { cpSync, existsSync, mkdirSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { InputError } from "../errors.ts";

export const EXAMPLES_DIR = resolve(dirname(fileURLToPath(import.meta.url)), "../../examples");

export function listExamples(): string[] {
  return existsSync(EXAMPLES_DIR)
    ? readdirSync(EXAMPLES_DIR).filter((n) => existsSync(join(EXAMPLES_DIR, n, "slipway.yaml")))
    : [];
}

export function initWorkDir(dir: string, example = "minimal-dev"): string {
  const target = resolve(dir);
  const source = join(EXAMPLES_DIR, example);
  if (!existsSync(join(source, "slipway.yaml"))) {
    throw new InputError(`no example named ${example} (have: ${listExamples().join(", ")})`, {
      where: "--example",
    });
  }
  if (existsSync(target) && readdirSync(target).length > 0) {
    throw new InputError("directory is not empty; init only writes into a new or empty one", {
      where: target,
    });
  }
  mkdirSync(target, { recursive: true });
  cpSync(source, target, { recursive: true });
  writeFileSync(join(target, ".gitignore"), "/builds/\n/cache/\n/tmp/\n/.slipway-build.lock\n");
  return join(target, "slipway.yaml");
}
