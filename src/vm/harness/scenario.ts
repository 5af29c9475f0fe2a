/**
 * Scenarios: `test/e2e/<name>/` (or any directory) holding `scenario.yaml` and optionally a
 * script (`test.sh`, or `test.ts` exporting `run(vm)`). This module reads and checks the
 * metadata; errors name the file and line.
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join, resolve } from "node:path";
import { isMap, isScalar, LineCounter, parseDocument } from "yaml";
import { z } from "zod";
import { InputError } from "../../errors.ts";
import { parseSize } from "../qemu.ts";

export const SCENARIO_FILE = "scenario.yaml";
export const SCRIPT_NAMES = ["test.ts", "test.sh"] as const;

const sizeString = z.union([z.string(), z.number().int().positive()]).transform((v, ctx) => {
  try {
    return parseSize(String(v));
  } catch {
    ctx.addIssue({ code: "custom", message: `not a size: ${JSON.stringify(v)} (e.g. 1G, 512M)` });
    return z.NEVER;
  }
});

const stringList = z
  .union([z.string(), z.array(z.string())])
  .transform((v) => (Array.isArray(v) ? v : [v]));

const Meta = z
  .object({
    description: z.string().optional(),
    /** Seconds for the whole test: boots, script, log collection. */
    timeout: z.number().int().positive().max(7200).default(600),
    /** Guest memory in MiB. */
    memory: z.number().int().min(256).max(65536).default(1024),
    cpus: z.number().int().min(1).max(64).default(1),
    firmware: z.enum(["uefi", "bios"]).default("uefi"),
    /** Grow the boot disk (copy-on-write overlay). */
    disk_size: sizeString.optional(),
    /** Blank extra disks, attached as virtio disks after the boot disk (/dev/vdb, …). */
    disks: z.array(z.object({ size: sizeString }).strict()).default([]),
    /** Slipway YAML, #cloud-config or Ignition JSON; rendered with `slipway config render`. */
    config: z.string().optional(),
    /** Ignition JSON handed to the VM byte for byte (no render, no harness key): negative tests. */
    ignition: z.string().optional(),
    script: z.string().optional(),
    /**
     * A TypeScript module run before the VM starts, exporting `setup(ctx)`: it may start
     * services on the host (an update server), forward guest addresses to them, and choose
     * the disk. Its result reaches the script as `ctx.setup`; its `teardown` runs at the end.
     */
    setup: z.string().optional(),
    /** Console lines (regexes) this scenario expects; they are not findings. */
    allow_console: z.array(z.string()).default([]),
    expect: z
      .object({
        /** The boot must stop (no ssh), and the reason must contain every string given. */
        boot_fails_with: stringList.optional(),
        /** The test must fail, with every string given in its failures. */
        fails_with: stringList.optional(),
      })
      .strict()
      .default({}),
    tags: z.array(z.string()).default([]),
  })
  .strict()
  .refine((m) => !(m.config && m.ignition), {
    message: "give config or ignition, not both",
    path: ["ignition"],
  })
  .refine((m) => !(m.expect.boot_fails_with && m.expect.fails_with), {
    message: "give expect.boot_fails_with or expect.fails_with, not both",
    path: ["expect"],
  });

export type ScenarioMeta = z.output<typeof Meta>;

export interface Scenario {
  name: string;
  dir: string;
  meta: ScenarioMeta;
  /** Absolute paths, checked to exist. */
  configFile?: string;
  ignitionFile?: string;
  script?: string;
  setup?: string;
  allowConsole: RegExp[];
}

/** Parse a scenario.yaml's text; `file` is for messages and relative paths. */
export function parseScenario(text: string, file: string): Scenario {
  const lc = new LineCounter();
  const doc = parseDocument(text, { lineCounter: lc, prettyErrors: false });
  const at = (offset: number | undefined) => {
    if (offset === undefined) return file;
    const p = lc.linePos(offset);
    return `${file}:${p.line}:${p.col}`;
  };
  if (doc.errors.length > 0) {
    const e = doc.errors[0]!;
    throw new InputError(`YAML syntax: ${e.message.split("\n")[0]}`, { where: at(e.pos[0]) });
  }
  const raw = doc.contents === null ? {} : doc.toJS();
  const parsed = Meta.safeParse(raw ?? {});
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const path = issue.path.filter((p): p is string | number => typeof p !== "symbol");
    // The nearest node that exists points at the line.
    let node: unknown;
    for (let n = path.length; n >= 0 && !node; n--) node = doc.getIn(path.slice(0, n), true);
    if (issue.code === "unrecognized_keys" && isMap(node)) {
      const key = node.items.find(
        (i) => isScalar(i.key) && issue.keys.includes(String(i.key.value)),
      );
      if (key && isScalar(key.key)) node = key.key;
    }
    const range = (node as { range?: [number, number, number] } | undefined)?.range;
    const where = at(range?.[0]);
    const dotted = path.length > 0 ? `${path.join(".")}: ` : "";
    throw new InputError(`${dotted}${issue.message}`, { where });
  }
  const meta = parsed.data;
  const dir = resolve(file, "..");
  const existing = (rel: string | undefined, key: string) => {
    if (rel === undefined) return undefined;
    const p = resolve(dir, rel);
    if (!existsSync(p)) throw new InputError(`${key}: file ${rel} does not exist`, { where: file });
    return p;
  };
  let script = existing(meta.script, "script");
  if (!meta.script) {
    const found = SCRIPT_NAMES.map((n) => join(dir, n)).find((p) => existsSync(p));
    script = found;
  }
  if (script && !/\.(ts|sh)$/.test(script))
    throw new InputError(`script: ${basename(script)} must end in .ts or .sh`, { where: file });
  const setup = existing(meta.setup, "setup");
  if (setup && !setup.endsWith(".ts"))
    throw new InputError(`setup: ${basename(setup)} must end in .ts`, { where: file });
  const allowConsole = meta.allow_console.map((s, i) => {
    try {
      return new RegExp(s);
    } catch (e) {
      throw new InputError(`allow_console.${i}: ${(e as Error).message}`, { where: file });
    }
  });
  return {
    name: basename(dir),
    dir,
    meta,
    configFile: existing(meta.config, "config"),
    ignitionFile: existing(meta.ignition, "ignition"),
    script,
    setup,
    allowConsole,
  };
}

export function loadScenario(dir: string): Scenario {
  const file = join(dir, SCENARIO_FILE);
  if (!existsSync(file)) throw new InputError(`no ${SCENARIO_FILE}`, { where: dir });
  return parseScenario(readFileSync(file, "utf8"), file);
}

/**
 * Every scenario under `root` (directories holding scenario.yaml, one level down), sorted by
 * name; `pattern` filters names as a glob (`*`, `?`) or a plain substring.
 */
export function discoverScenarios(root: string, pattern?: string): Scenario[] {
  if (!existsSync(root) || !statSync(root).isDirectory())
    throw new InputError("scenario directory does not exist", { where: root });
  const match = namePredicate(pattern);
  return readdirSync(root)
    .filter((n) => existsSync(join(root, n, SCENARIO_FILE)) && match(n))
    .sort()
    .map((n) => loadScenario(join(root, n)));
}

export function namePredicate(pattern: string | undefined): (name: string) => boolean {
  if (!pattern) return () => true;
  if (!/[*?]/.test(pattern)) return (n) => n.includes(pattern);
  const re = new RegExp(
    `^${pattern
      .replace(/[.+^${}()|[\]\\]/g, "\\$&")
      .replace(/\*/g, ".*")
      .replace(/\?/g, ".")}$`,
  );
  return (n) => re.test(n);
}
