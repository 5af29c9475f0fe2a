/**
 * Checking a payload without writing anything: `verifyPayload` proves the
 * signature and that every blob is intact; `inspectPayload` only reads the
 * head and the plan bodies (signatures unchecked) to show what is inside.
 */
import { createHash } from "node:crypto";
import { InputError } from "../errors.ts";
import { chunkCount, type Manifest } from "./format.ts";
import type { KeyInput } from "./keys.ts";
import { checkTiling, loadPlan, openPayload } from "./open.ts";
import { type PayloadReader, toReader } from "./reader.ts";

export interface PayloadSummary {
  version: string;
  size: number;
  manifestSha256: string;
  target: Manifest["target"];
  chunkSize: number;
  chunks: number;
  signatures: { keyId: string; algorithm: string }[];
  /** Key ids that verified (verifyPayload only). */
  verifiedBy: string[];
  boot: { kernel?: { size: number; sha256: string }; initrd?: { size: number; sha256: string } };
  plans: {
    id: string;
    source: { size: number; sha256: string; version?: string } | null;
    ops: number;
    blobs: number;
    /** Chunks whose SHA-256 the plan carries (the rest are whole copies of the source). */
    checkedChunks: number;
    /** Bytes a client applying this plan reads from the payload. */
    downloadBytes: number;
  }[];
}

async function summarize(
  payload: string | PayloadReader,
  trusted: KeyInput[] | null,
  deep: boolean,
): Promise<PayloadSummary> {
  const reader = toReader(payload);
  try {
    const o = await openPayload(reader, trusted);
    const m = o.manifest;
    const plans = [];
    for (const ref of m.plans) plans.push({ ref, plan: await loadPlan(reader, o, ref) });
    if (deep) {
      const blobs = [
        ...plans.flatMap((p) => [p.ref.body, ...p.plan.blobs]),
        ...(m.boot.kernel ? [m.boot.kernel.blob] : []),
        ...(m.boot.initrd ? [m.boot.initrd.blob] : []),
      ];
      checkTiling(blobs, o.size - o.dataOffset, reader.name);
      for (const b of blobs) {
        if (b.size === 0) continue;
        const h = createHash("sha256");
        for await (const part of reader.stream(o.dataOffset + b.offset, b.size)) h.update(part);
        if (h.digest("hex") !== b.sha256)
          throw new InputError(`data blob at ${b.offset} is corrupt`, { where: reader.name });
      }
    }
    const bootBytes = (m.boot.kernel?.blob.size ?? 0) + (m.boot.initrd?.blob.size ?? 0);
    const boot: PayloadSummary["boot"] = {};
    if (m.boot.kernel) boot.kernel = { size: m.boot.kernel.size, sha256: m.boot.kernel.sha256 };
    if (m.boot.initrd) boot.initrd = { size: m.boot.initrd.size, sha256: m.boot.initrd.sha256 };
    return {
      version: m.version,
      size: o.size,
      manifestSha256: o.manifestSha256,
      target: m.target,
      chunkSize: m.chunkSize,
      chunks: chunkCount(m),
      signatures: o.signatures.map((s) => ({ keyId: s.keyId, algorithm: s.algorithm })),
      verifiedBy: o.verifiedBy,
      boot,
      plans: plans.map(({ ref, plan }) => ({
        id: ref.id,
        source: ref.source,
        ops: plan.ops.length,
        blobs: plan.blobs.length,
        checkedChunks: plan.chunks.length,
        downloadBytes:
          o.dataOffset + ref.body.size + bootBytes + plan.blobs.reduce((a, b) => a + b.size, 0),
      })),
    };
  } finally {
    await reader.close?.();
  }
}

/**
 * Check a payload's signature (any trusted key will do) and that every data
 * blob matches the signed manifest. Throws InputError naming the problem.
 */
export function verifyPayload(
  payload: string | PayloadReader,
  trustedKeys: KeyInput[],
): Promise<PayloadSummary> {
  return summarize(payload, trustedKeys, true);
}

/** Show what a payload holds. Signatures are listed, NOT checked: do not act on the result. */
export function inspectPayload(payload: string | PayloadReader): Promise<PayloadSummary> {
  return summarize(payload, null, false);
}
