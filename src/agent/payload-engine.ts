/**
 * The production PayloadEngine: src/payload's verify and streaming apply.
 * The apply journal lives in the agent's state directory (a block device
 * has nowhere to keep one), so an interrupted write resumes where it
 * stopped instead of starting over.
 */
import { basename, join } from "node:path";
import { applyPayload } from "../payload/apply.ts";
import { verifyPayload } from "../payload/verify.ts";
import { type PayloadEngine, PayloadVerifyError } from "./payload-port.ts";

export function payloadLibraryEngine(opts: { journalDir: string }): PayloadEngine {
  return {
    async verify(payload, publicKey) {
      try {
        await verifyPayload(payload, [publicKey]);
      } catch (err) {
        throw new PayloadVerifyError(`payload does not verify: ${(err as Error).message}`);
      }
    },
    async apply(req) {
      const r = await applyPayload({
        payload: req.payload,
        target: req.target,
        source: req.source,
        trustedKeys: [req.publicKey],
        resume: true,
        journalPath: join(opts.journalDir, `${basename(req.target)}.journal`),
        onProgress: (p) => {
          if (p.phase === "write") req.onProgress?.(p.done, p.total);
        },
      });
      return {
        version: r.version,
        kernel: r.kernel,
        initrd: r.initrd,
        verity: r.verity
          ? { rootHash: r.verity.rootHash, hashOffset: r.verity.hashOffset ?? 0 }
          : undefined,
      };
    },
  };
}
