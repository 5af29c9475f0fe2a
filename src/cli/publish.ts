/**
 * `slipway publish`: register a payload with an update server and point a channel at it.
 * The file is hashed here and uploaded; the server recomputes the SHA-256 and refuses a
 * mismatch. With --url the file stays where it is hosted and only its metadata is registered.
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
  json?: boolean;
}

/** A build directory (builds/<version>/ with meta.json) or a file. */
export function resolvePayload(path: string, version?: string): { file: string; version: string } {
  if (!existsSync(path)) throw new InputError("no such file or directory", { where: path });
  if (statSync(path).isDirectory()) {
    const metaPath = join(path, "meta.json");
    let meta: { version?: unknown };
    try {
      meta = JSON.parse(readFileSync(metaPath, "utf8")) as { version?: unknown };
    } catch (err) {
      throw new InputError(`cannot read build metadata: ${(err as Error).message}`, {
        where: metaPath,
      });
    }
    const candidates = readdirSync(path).filter((f) =>
      /\.(payload|slipway|gz|raw)$|^payload/.test(f),
    );
    if (candidates.length !== 1) {
      throw new InputError(
        `expected exactly one payload file (*.payload) in the build, found ${candidates.length}`,
        {
          where: path,
        },
      );
    }
    const v = version ?? (typeof meta.version === "string" ? meta.version : undefined);
    if (!v) throw new InputError("meta.json has no version; pass --version", { where: metaPath });
    return { file: join(path, candidates[0]!), version: v };
  }
  if (!version)
    throw new InputError("--version is required when publishing a file", { where: path });
  return { file: path, version };
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

async function call(base: string, tok: string, method: string, path: string, body?: unknown) {
  const res = await fetch(base + path, {
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

export function register(program: Command): void {
  program
    .command("publish")
    .description(
      "upload a payload (file or build directory) to an update server and put it on a channel",
    )
    .argument("<file-or-build>", "payload file, or a build directory with meta.json")
    .requiredOption("--server <url>", "update server base URL")
    .requiredOption("--app <id>", "application id")
    .requiredOption("--channel <name>", "channel to point at the new package (created if missing)")
    .option("--version <v>", "package version (default: the build's meta.json version)")
    .option("--url <base-url>", "the payload is hosted here; register it without uploading")
    .option("--filename <name>", "file name clients download (default: the file's name)")
    .option("--token <token>", "admin API token (or --token-file, or SLIPWAY_TOKEN)")
    .option("--token-file <path>", "file holding the admin API token")
    .option("--json", "machine-readable output")
    .action(async (path: string, o: PublishOpts) => {
      const { file, version } = resolvePayload(path, o.version);
      const tok = token(o);
      const base = o.server.replace(/\/$/, "");
      const filename = o.filename ?? basename(file);
      process.stderr.write(`hashing ${file} …\n`);
      const sha256 = await sha256File(file);
      const size = statSync(file).size;
      let pkg: { status: number; body: Record<string, unknown> };
      if (o.url) {
        pkg = await call(base, tok, "POST", `/api/apps/${encodeURIComponent(o.app)}/packages`, {
          version,
          url: o.url,
          filename,
          size,
          sha256,
        });
      } else {
        process.stderr.write(`uploading ${size} bytes …\n`);
        const q = new URLSearchParams({ filename, sha256 });
        const res = await fetch(
          `${base}/api/apps/${encodeURIComponent(o.app)}/packages/${encodeURIComponent(version)}?${q}`,
          {
            method: "PUT",
            headers: {
              authorization: `Bearer ${tok}`,
              "content-type": "application/octet-stream",
              "content-length": String(size),
            },
            body: Readable.toWeb(createReadStream(file)) as ReadableStream,
            duplex: "half",
          } as RequestInit,
        );
        const text = await res.text();
        pkg = {
          status: res.status,
          body: text ? (JSON.parse(text) as Record<string, unknown>) : {},
        };
      }
      if (pkg.status !== 201) {
        throw new SlipwayError(
          `server refused package ${version}: HTTP ${pkg.status} ${String(pkg.body.error ?? "")}`,
          {
            where: base,
          },
        );
      }
      const chPath = `/api/apps/${encodeURIComponent(o.app)}/channels`;
      let ch = await call(base, tok, "PATCH", `${chPath}/${encodeURIComponent(o.channel)}`, {
        package: version,
      });
      if (ch.status === 404)
        ch = await call(base, tok, "POST", chPath, { name: o.channel, package: version });
      if (ch.status !== 200 && ch.status !== 201) {
        throw new SlipwayError(
          `package stored, but channel ${o.channel} not updated: HTTP ${ch.status} ${String(ch.body.error ?? "")}`,
          {
            where: base,
          },
        );
      }
      const out = { app: o.app, channel: o.channel, version, sha256, size, package: pkg.body };
      if (o.json) printJson(out);
      else
        process.stdout.write(
          `published ${version} (${size} bytes, sha256 ${sha256}) to ${o.app}/${o.channel}\n`,
        );
    });
}
