/**
 * `slipway publish`: register a payload with an update server and point a channel at it.
 * Given a build directory (builds/<version>/ from `slipway build`), it first creates the
 * signed payload from the build's USR image, kernel and initrd (as `slipway payload create`
 * does), plus one delta payload per --from build. Each file is hashed here and uploaded; the
 * server recomputes the SHA-256 and refuses a mismatch. With --url the files stay where they
 * are hosted and only their metadata is registered.
 */
import { createHash } from "node:crypto";
import { createReadStream, existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { basename, join } from "node:path";
import { Readable } from "node:stream";
import type { Command } from "commander";
import { InputError, SlipwayError } from "../errors.ts";
import { printJson } from "./output.ts";

interface PublishOpts {
  server: string;
  token?: string;
  tokenFile?: string;
  app: string;
  channel: string;
  version?: string;
  url?: string;
  filename?: string;
  key: string[];
  from: string[];
  payloadDir?: string;
  json?: boolean;
}

/** What publish needs from a build's meta.json. */
export interface BuildRef {
  dir: string;
  version: string;
  usr: string;
  kernel?: string;
  initrd?: string;
  verity?: { rootHash: string; hashOffset: number };
}

/** A build directory: meta.json names the USR image (artifacts.usr); null when not a build. */
export function readBuild(dir: string): BuildRef | null {
  const metaPath = join(dir, "meta.json");
  if (!existsSync(metaPath)) return null;
  let meta: {
    version?: unknown;
    artifacts?: Record<string, { path?: string } | undefined>;
    usr?: { verityRootHash?: string };
    boot?: { verity?: { rootHash?: string; hashOffset?: number } | null };
  };
  try {
    meta = JSON.parse(readFileSync(metaPath, "utf8"));
  } catch (err) {
    throw new InputError(`cannot read build metadata: ${(err as Error).message}`, {
      where: metaPath,
    });
  }
  const usr = meta.artifacts?.usr?.path;
  if (!usr) return null;
  if (typeof meta.version !== "string" || meta.version === "")
    throw new InputError("meta.json has no version", { where: metaPath });
  const art = (name: string) => {
    const p = meta.artifacts?.[name]?.path;
    return p ? join(dir, p) : undefined;
  };
  const rootHash = meta.usr?.verityRootHash ?? meta.boot?.verity?.rootHash;
  const hashOffset = meta.boot?.verity?.hashOffset;
  if (rootHash && hashOffset === undefined)
    throw new InputError("meta.json has a verity root hash but no boot.verity.hashOffset", {
      where: metaPath,
    });
  const ref: BuildRef = { dir, version: meta.version, usr: join(dir, usr) };
  const kernel = art("kernel");
  const initrd = art("initrd");
  if (kernel) ref.kernel = kernel;
  if (initrd) ref.initrd = initrd;
  if (rootHash && hashOffset !== undefined) ref.verity = { rootHash, hashOffset };
  return ref;
}

/** A payload file to publish: the package's full payload, or a delta from `from`. */
interface PayloadFile {
  file: string;
  from?: string;
}

/**
 * A payload file, a directory holding exactly one *.payload, or a build directory (its
 * payloads are created: needs signing keys).
 */
export async function resolvePayload(
  path: string,
  o: Pick<PublishOpts, "version" | "key" | "from" | "payloadDir" | "json">,
): Promise<{ files: PayloadFile[]; version: string }> {
  if (!existsSync(path)) throw new InputError("no such file or directory", { where: path });
  if (!statSync(path).isDirectory()) {
    if (!o.version)
      throw new InputError("--version is required when publishing a file", { where: path });
    if (o.from.length > 0)
      throw new InputError("--from needs a build directory to create deltas from", {
        where: path,
      });
    return { files: [{ file: path }], version: o.version };
  }
  const build = readBuild(path);
  if (build) return createBuildPayloads(build, o);
  const candidates = readdirSync(path).filter((f) => f.endsWith(".payload"));
  if (candidates.length !== 1) {
    throw new InputError(
      `not a build (no meta.json with a usr artifact) and not exactly one *.payload file (found ${candidates.length})`,
      { where: path },
    );
  }
  if (!o.version)
    throw new InputError("--version is required when publishing a payload file", {
      where: path,
    });
  return { files: [{ file: join(path, candidates[0]!) }], version: o.version };
}

async function createBuildPayloads(
  build: BuildRef,
  o: Pick<PublishOpts, "version" | "key" | "from" | "payloadDir" | "json">,
): Promise<{ files: PayloadFile[]; version: string }> {
  if (o.key.length === 0)
    throw new InputError("publishing a build creates its payload: pass --key <private key>", {
      where: build.dir,
    });
  if (o.version && o.version !== build.version)
    throw new InputError(
      `--version ${o.version} differs from the build's version ${build.version}`,
      { where: join(build.dir, "meta.json") },
    );
  const sources = o.from.map((f) => {
    const b = readBuild(f);
    if (!b) throw new InputError("--from must be a build directory (meta.json)", { where: f });
    if (b.version === build.version)
      throw new InputError(`--from has the same version as the build (${b.version})`, {
        where: f,
      });
    return b;
  });
  const outDir = o.payloadDir ?? build.dir;
  const { createPayload } = await import("../payload/index.ts");
  const progress = o.json ? undefined : (m: string) => process.stderr.write(`${m}\n`);
  const common = {
    target: build.usr,
    keys: o.key,
    version: build.version,
    ...(build.kernel ? { kernel: build.kernel } : {}),
    ...(build.initrd ? { initrd: build.initrd } : {}),
    ...(build.verity ? { verity: build.verity } : {}),
    onProgress: progress,
  };
  const full = join(outDir, `slipway-${build.version}.payload`);
  process.stderr.write(`creating ${full} …\n`);
  await createPayload({ ...common, output: full });
  const files: PayloadFile[] = [{ file: full }];
  for (const src of sources) {
    const out = join(outDir, `slipway-${build.version}-from-${src.version}.payload`);
    process.stderr.write(`creating delta ${out} …\n`);
    await createPayload({
      ...common,
      output: out,
      full: false,
      sources: [{ path: src.usr, version: src.version }],
    });
    files.push({ file: out, from: src.version });
  }
  return { files, version: build.version };
}

async function sha256File(file: string): Promise<string> {
  const h = createHash("sha256");
  for await (const chunk of createReadStream(file)) h.update(chunk as Buffer);
  return h.digest("hex");
}

function token(o: PublishOpts): string {
  if (o.token) return o.token;
  if (o.tokenFile) return readFileSync(o.tokenFile, "utf8").trim();
  if (process.env.SLIPWAY_TOKEN) return process.env.SLIPWAY_TOKEN;
  throw new InputError("no API token: pass --token, --token-file or set SLIPWAY_TOKEN");
}

/** fetch, with an unreachable server reported as such (not as an internal error). */
async function request(url: string, init: RequestInit): Promise<Response> {
  try {
    return await fetch(url, init);
  } catch (err) {
    const cause = (err as Error & { cause?: Error }).cause;
    throw new SlipwayError(`cannot reach the update server: ${cause?.message ?? err}`, {
      where: url,
    });
  }
}

async function call(base: string, tok: string, method: string, path: string, body?: unknown) {
  const res = await request(base + path, {
    method,
    headers: {
      authorization: `Bearer ${tok}`,
      ...(body ? { "content-type": "application/json" } : {}),
    },
    body: body ? JSON.stringify(body) : undefined,
  });
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

async function upload(base: string, tok: string, path: string, file: string, size: number) {
  const res = await request(base + path, {
    method: "PUT",
    headers: {
      authorization: `Bearer ${tok}`,
      "content-type": "application/octet-stream",
      "content-length": String(size),
    },
    body: Readable.toWeb(createReadStream(file)) as ReadableStream,
    duplex: "half",
  } as RequestInit);
  const text = await res.text();
  return { status: res.status, body: text ? (JSON.parse(text) as Record<string, unknown>) : {} };
}

const collect = (v: string, acc: string[]) => [...acc, v];

export function register(program: Command): void {
  program
    .command("publish")
    .description(
      "put a build (its payload is created and signed here), a payload file or a directory with one on an update server's channel",
    )
    .argument(
      "<file-or-build>",
      "build directory (builds/<version>), payload file, or a directory with one *.payload",
    )
    .requiredOption("--server <url>", "update server base URL")
    .requiredOption("--app <id>", "application id")
    .requiredOption("--channel <name>", "channel to point at the new package (created if missing)")
    .option("--version <v>", "package version (a build's is its meta.json version)")
    .option("--key <file>", "signing key for a build's payloads (repeatable)", collect, [])
    .option(
      "--from <build>",
      "earlier build hosts may run: also publish a delta payload from it (repeatable)",
      collect,
      [],
    )
    .option("--payload-dir <dir>", "where a build's payloads are written (default: the build)")
    .option("--url <base-url>", "the payloads are hosted here; register them without uploading")
    .option("--filename <name>", "file name clients download (default: the file's name)")
    .option("--token <token>", "admin API token (or --token-file, or SLIPWAY_TOKEN)")
    .option("--token-file <path>", "file holding the admin API token")
    .option("--json", "machine-readable output")
    .action(async (path: string, o: PublishOpts) => {
      const tok = token(o);
      const { files, version } = await resolvePayload(path, o);
      const base = o.server.replace(/\/$/, "");
      const app = encodeURIComponent(o.app);
      const pkgPath = `/api/apps/${app}/packages`;
      const published: { from: string | null; filename: string; sha256: string; size: number }[] =
        [];
      for (const { file, from } of files) {
        const filename = from === undefined && o.filename ? o.filename : basename(file);
        process.stderr.write(`hashing ${file} …\n`);
        const sha256 = await sha256File(file);
        const size = statSync(file).size;
        let res: { status: number; body: Record<string, unknown> };
        if (o.url) {
          const meta = { url: o.url, filename, size, sha256 };
          res =
            from === undefined
              ? await call(base, tok, "POST", pkgPath, { version, ...meta })
              : await call(base, tok, "POST", `${pkgPath}/${encodeURIComponent(version)}/deltas`, {
                  from,
                  ...meta,
                });
        } else {
          process.stderr.write(`uploading ${size} bytes …\n`);
          const q = new URLSearchParams({ filename, sha256 });
          const target =
            from === undefined
              ? `${pkgPath}/${encodeURIComponent(version)}?${q}`
              : `${pkgPath}/${encodeURIComponent(version)}/deltas/${encodeURIComponent(from)}?${q}`;
          res = await upload(base, tok, target, file, size);
        }
        if (res.status !== 201) {
          const what = from === undefined ? `package ${version}` : `delta ${from} → ${version}`;
          throw new SlipwayError(
            `server refused ${what}: HTTP ${res.status} ${String(res.body.error ?? "")}`,
            { where: base },
          );
        }
        published.push({ from: from ?? null, filename, sha256, size });
      }
      const chPath = `/api/apps/${app}/channels`;
      let ch = await call(base, tok, "PATCH", `${chPath}/${encodeURIComponent(o.channel)}`, {
        package: version,
      });
      if (ch.status === 404)
        ch = await call(base, tok, "POST", chPath, { name: o.channel, package: version });
      if (ch.status !== 200 && ch.status !== 201) {
        throw new SlipwayError(
          `package stored, but channel ${o.channel} not updated: HTTP ${ch.status} ${String(ch.body.error ?? "")}`,
          { where: base },
        );
      }
      const main = published[0]!;
      const out = {
        app: o.app,
        channel: o.channel,
        version,
        sha256: main.sha256,
        size: main.size,
        filename: main.filename,
        deltas: published.slice(1),
      };
      if (o.json) printJson(out);
      else {
        process.stdout.write(
          `published ${version} (${main.size} bytes, sha256 ${main.sha256}) to ${o.app}/${o.channel}\n`,
        );
        for (const d of out.deltas)
          process.stdout.write(`  delta from ${d.from}: ${d.filename} (${d.size} bytes)\n`);
      }
    });
}
