/**
 * Convert a finished build's disk image(s) into other formats and record
 * them in its meta.json (rewritten by rename).
 */
import { existsSync, readlinkSync, renameSync, writeFileSync } from "node:fs";
import { join, resolve } from "node:path";
import { InputError } from "../errors.ts";
import {
  convertImage,
  FORMAT_TOOLS,
  formatExtension,
  IMAGE_FORMATS,
  isImageFormat,
} from "./formats.ts";
import { requireTools } from "./host-tools.ts";
import { type ArtifactRecord, artifactRecord, readMeta } from "./meta.ts";

export interface ConvertOptions {
  workDir: string;
  version?: string;
  formats: string[];
}

export async function convertBuild(opts: ConvertOptions): Promise<ArtifactRecord[]> {
  const builds = join(resolve(opts.workDir), "builds");
  let version = opts.version;
  if (!version) {
    if (!existsSync(join(builds, "latest"))) {
      throw new InputError("no builds yet; run 'slipway build' first", { where: builds });
    }
    version = readlinkSync(join(builds, "latest"));
  }
  const dir = join(builds, version);
  const meta = readMeta(dir);
  if (!meta) throw new InputError(`no build ${version}`, { where: dir });
  for (const f of opts.formats) {
    if (!isImageFormat(f)) {
      throw new InputError(`unknown format ${f} (have: ${IMAGE_FORMATS.join(", ")})`, {
        where: "--format",
      });
    }
  }
  requireTools(FORMAT_TOOLS);
  const out: ArtifactRecord[] = [];
  const disks = Object.entries(meta.artifacts).filter(
    ([, a]) => a.format === "raw" && a.path.endsWith(".raw"),
  );
  for (const [name, disk] of disks) {
    for (const f of opts.formats) {
      if (!isImageFormat(f) || f === "raw") continue;
      const dest = join(dir, disk.path.replace(/\.raw$/, `.${formatExtension(f)}`));
      await convertImage(join(dir, disk.path), dest, f);
      const rec = await artifactRecord(dir, dest, f);
      rec.uncompressedSize = disk.size;
      rec.uncompressedSha256 = disk.sha256;
      meta.artifacts[`${name}-${f}`] = rec;
      out.push(rec);
    }
  }
  const tmp = join(dir, `meta.json.tmp-${process.pid}`);
  writeFileSync(tmp, `${JSON.stringify(meta, null, 2)}\n`);
  renameSync(tmp, join(dir, "meta.json"));
  return out;
}
