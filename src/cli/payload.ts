/** `slipway payload …` and `slipway keygen`: wiring for src/payload. */
import { existsSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import type { Command } from "commander";
import { InputError } from "../errors.ts";
import type { ApplyProgress } from "../payload/apply.ts";
import type { PayloadSummary } from "../payload/index.ts";
import { formatTable, printJson } from "./output.ts";

const collect = (v: string, prev: string[]) => [...prev, v];

/** The payload engine, loaded when a command runs rather than at CLI start-up. */
const payloadLib = () => import("../payload/index.ts");

/** A USR image path, or a build directory whose meta.json names it. */
interface ImageRef {
  path: string;
  version?: string;
  kernel?: string;
  initrd?: string;
  verityRootHash?: string;
  /** Where the dm-verity hash tree starts in the image (meta.json boot.verity.hashOffset). */
  verityHashOffset?: number;
}

function resolveImage(arg: string): ImageRef {
  const meta = join(arg, "meta.json");
  if (!existsSync(meta)) return { path: arg };
  let m: {
    version?: string;
    usr?: { verityRootHash?: string };
    boot?: { verity?: { rootHash?: string; hashOffset?: number } | null };
    artifacts?: Record<string, { path: string }>;
  };
  try {
    m = JSON.parse(readFileSync(meta, "utf8"));
  } catch {
    throw new InputError("meta.json is not valid JSON", { where: meta });
  }
  const usr = m.artifacts?.usr?.path;
  if (!usr) throw new InputError("meta.json lists no usr artifact", { where: meta });
  const ref: ImageRef = { path: join(arg, usr) };
  if (m.version) ref.version = m.version;
  if (m.artifacts?.kernel) ref.kernel = join(arg, m.artifacts.kernel.path);
  if (m.artifacts?.initrd) ref.initrd = join(arg, m.artifacts.initrd.path);
  const verity = m.boot?.verity;
  const rootHash = m.usr?.verityRootHash ?? verity?.rootHash;
  if (rootHash) ref.verityRootHash = rootHash;
  if (verity?.hashOffset !== undefined) ref.verityHashOffset = verity.hashOffset;
  return ref;
}

const mib = (n: number) => `${(n / (1 << 20)).toFixed(2)} MiB`;

/** One progress line on a TTY (rewritten in place), a line every 10% otherwise. */
function progressPrinter(): (p: ApplyProgress) => void {
  let lastShown = -1;
  let phase = "";
  const tty = process.stderr.isTTY;
  return (p) => {
    const pct = p.total ? Math.floor((p.done / p.total) * 100) : 100;
    if (p.phase !== phase) lastShown = -1;
    phase = p.phase;
    const step = tty ? 1 : 10;
    if (pct - lastShown < step && p.done !== p.total) return;
    lastShown = pct;
    const line = `${p.phase}: ${pct}% (${mib(p.done)} of ${mib(p.total)})`;
    process.stderr.write(tty ? `\r\x1b[K${line}${p.done === p.total ? "\n" : ""}` : `${line}\n`);
  };
}

function printSummary(s: PayloadSummary): void {
  const lines = [
    `version:   ${s.version}`,
    `size:      ${s.size} bytes`,
    `target:    ${s.target.size} bytes, sha256 ${s.target.sha256}`,
    ...(s.target.verity
      ? [
          `verity:    root hash ${s.target.verity.rootHash}, hash tree at ${s.target.verity.hashOffset}`,
        ]
      : []),
    `chunks:    ${s.chunks} × ${s.chunkSize} bytes`,
    `kernel:    ${s.boot.kernel ? `${s.boot.kernel.size} bytes` : "-"}`,
    `initrd:    ${s.boot.initrd ? `${s.boot.initrd.size} bytes` : "-"}`,
    `signed by: ${s.signatures.map((x) => `${x.keyId} (${x.algorithm})`).join(", ")}`,
  ];
  process.stdout.write(`${lines.join("\n")}\n\n`);
  process.stdout.write(
    `${formatTable(
      ["PLAN", "SOURCE", "OPS", "BLOBS", "CHECKED CHUNKS", "DOWNLOAD"],
      s.plans.map((p) => [
        p.id,
        p.source
          ? `${p.source.sha256.slice(0, 16)}…${p.source.version ? ` (${p.source.version})` : ""}`
          : "-",
        p.ops,
        p.blobs,
        p.checkedChunks,
        p.downloadBytes,
      ]),
      new Set([2, 3, 4, 5]),
    )}\n`,
  );
}

export function register(program: Command): void {
  program
    .command("keygen")
    .description("Create a payload signing key pair: PREFIX.key (private) and PREFIX.pub")
    .option("-o, --output <prefix>", "file name prefix", "slipway-signing")
    .option("--rsa", "RSA-3072 instead of Ed25519")
    .option("--json", "print the key id as JSON")
    .action(async (o: { output: string; rsa?: boolean; json?: boolean }) => {
      const { generateKeyPair } = await payloadLib();
      const priv = `${o.output}.key`;
      const pub = `${o.output}.pub`;
      if (existsSync(priv)) throw new InputError("refusing to overwrite a key", { where: priv });
      const k = generateKeyPair(o.rsa ? "rsa" : "ed25519");
      writeFileSync(priv, k.privatePem, { mode: 0o600 });
      writeFileSync(pub, k.publicPem);
      if (o.json) printJson({ keyId: k.keyId, private: priv, public: pub });
      else process.stdout.write(`key ${k.keyId}: ${priv} (keep secret), ${pub}\n`);
    });

  const payload = program.command("payload").description("Signed full and delta update payloads");

  payload
    .command("create")
    .description("Build a signed payload for a USR image, with deltas from earlier images")
    .requiredOption("--to <image>", "new USR image (or a build directory with meta.json)")
    .option("--from <image>", "earlier image clients may have (repeatable)", collect, [])
    .option("--no-full", "leave out the full plan (serves only the --from images)")
    .requiredOption("--key <file>", "private key (repeatable: one signature each)", collect, [])
    .requiredOption("-o, --output <file>", "payload file to write")
    .option("--kernel <file>", "slot kernel")
    .option("--initrd <file>", "slot initrd")
    .option("--version <version>", "OS version the payload installs")
    .option("--verity-root-hash <hex>", "dm-verity root hash of the image")
    .option(
      "--verity-hash-offset <bytes>",
      "byte offset of the dm-verity hash tree in the image (its erofs data size)",
    )
    .option("--json", "print the result as JSON")
    .action(
      async (o: {
        to: string;
        from: string[];
        full: boolean;
        key: string[];
        output: string;
        kernel?: string;
        initrd?: string;
        version?: string;
        verityRootHash?: string;
        verityHashOffset?: string;
        json?: boolean;
      }) => {
        const to = resolveImage(o.to);
        const kernel = o.kernel ?? to.kernel;
        const initrd = o.initrd ?? to.initrd;
        const rootHash = o.verityRootHash ?? to.verityRootHash;
        const offsetArg = o.verityHashOffset;
        const hashOffset = offsetArg !== undefined ? Number(offsetArg) : to.verityHashOffset;
        if (offsetArg !== undefined && !/^\d+$/.test(offsetArg))
          throw new InputError(`--verity-hash-offset "${offsetArg}" is not a byte count`);
        if (rootHash && hashOffset === undefined)
          throw new InputError(
            "a verity image needs its hash offset: give --verity-hash-offset (or --to a build directory whose meta.json has boot.verity)",
          );
        if (!rootHash && hashOffset !== undefined)
          throw new InputError("--verity-hash-offset without a verity root hash");
        const verity = rootHash && hashOffset !== undefined ? { rootHash, hashOffset } : undefined;
        const started = Date.now();
        const { createPayload } = await payloadLib();
        const r = await createPayload({
          target: to.path,
          sources: o.from.map((f) => {
            const ref = resolveImage(f);
            return ref.version ? { path: ref.path, version: ref.version } : { path: ref.path };
          }),
          full: o.full,
          keys: o.key,
          output: o.output,
          version: o.version ?? to.version ?? "unknown",
          ...(kernel ? { kernel } : {}),
          ...(initrd ? { initrd } : {}),
          ...(verity ? { verity } : {}),
          onProgress: o.json ? undefined : (m) => process.stderr.write(`${m}\n`),
        });
        if (o.json) return printJson(r);
        process.stdout.write(
          `${r.path}: ${r.size} bytes in ${((Date.now() - started) / 1000).toFixed(1)} s\n${formatTable(
            ["PLAN", "DOWNLOAD", "COPIED", "DIFFED", "LITERAL"],
            r.plans.map((p) => [
              p.id,
              p.downloadBytes,
              p.stats?.copied ?? "-",
              p.stats?.diffed ?? "-",
              p.stats?.literal ?? "-",
            ]),
            new Set([1, 2, 3, 4]),
          )}\n`,
        );
      },
    );

  payload
    .command("inspect <file>")
    .description("Show what a payload holds (signatures are listed, not checked)")
    .option("--json", "machine-readable output")
    .action(async (file: string, o: { json?: boolean }) => {
      const { inspectPayload } = await payloadLib();
      const s = await inspectPayload(file);
      if (o.json) printJson(s);
      else printSummary(s);
    });

  payload
    .command("verify <file>")
    .description("Check a payload's signature and every data blob; writes nothing")
    .requiredOption(
      "--pubkey <file>",
      "trusted public key (repeatable: any one will do)",
      collect,
      [],
    )
    .option("--json", "machine-readable output")
    .action(async (file: string, o: { pubkey: string[]; json?: boolean }) => {
      const { verifyPayload } = await payloadLib();
      const s = await verifyPayload(file, o.pubkey);
      if (o.json) printJson(s);
      else process.stdout.write(`${file}: OK, signed by ${s.verifiedBy.join(", ")}\n`);
    });

  payload
    .command("apply <file>")
    .description("Write the payload's USR image to a device or file, verified chunk by chunk")
    .requiredOption("--target <dev|file>", "device or file to write (the passive slot)")
    .option("--source <dev|file>", "device or file with the current image (for deltas)")
    .requiredOption("--pubkey <file>", "trusted public key (repeatable)", collect, [])
    .option("--resume", "continue an interrupted apply from its journal")
    .option("--journal <file>", "journal path (default: TARGET.slipway-journal)")
    .option("--boot-dir <dir>", "also write the slot's vmlinuz and initrd here")
    .option("--checkpoint-mib <n>", "sync and journal every N MiB", "64")
    .option("--json", "machine-readable result")
    .action(
      async (
        file: string,
        o: {
          target: string;
          source?: string;
          pubkey: string[];
          resume?: boolean;
          journal?: string;
          bootDir?: string;
          checkpointMib: string;
          json?: boolean;
        },
      ) => {
        const every = Number(o.checkpointMib);
        if (!Number.isFinite(every) || every <= 0)
          throw new InputError(`--checkpoint-mib "${o.checkpointMib}" is not a positive number`);
        const started = Date.now();
        const { applyPayload } = await payloadLib();
        const r = await applyPayload({
          payload: file,
          target: o.target,
          ...(o.source ? { source: o.source } : {}),
          trustedKeys: o.pubkey,
          resume: o.resume ?? false,
          ...(o.journal ? { journalPath: o.journal } : {}),
          ...(o.bootDir ? { bootDir: o.bootDir } : {}),
          checkpointBytes: Math.ceil(every * (1 << 20)),
          onProgress: o.json ? undefined : progressPrinter(),
        });
        const seconds = (Date.now() - started) / 1000;
        if (o.json) {
          const { kernel: _k, initrd: _i, ...rest } = r;
          return printJson({ ...rest, seconds });
        }
        process.stdout.write(
          `${o.target}: version ${r.version} written and verified (plan ${r.plan}, sha256 ${r.sha256}, ${mib(r.payloadBytesRead)} of payload read, ${seconds.toFixed(1)} s${r.resumedAtChunk ? `, resumed at chunk ${r.resumedAtChunk}` : ""})\n`,
        );
      },
    );
}
