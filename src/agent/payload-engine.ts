/**
 * The production PayloadEngine: src/payload's verify and streaming apply.
 * The apply journal lives in the agent's state directory (a block device
 * has nowhere to keep one), so an interrupted write resumes where it
 * stopped instead of starting over.
 */
import { basename, join } from "node:path";
import { applyPayload, WrongSourceError } from "../payload/apply.ts";
import { verifyPayload } from "../payload/verify.ts";
import { type PayloadEngine, PayloadSourceError, PayloadVerifyError } from "./payload-port.ts";

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
      let r: Awaited<ReturnType<typeof applyPayload>>;
      try {
        r = await applyPayload({
          payload: req.payload,
          target: req.target,
          source: req.source,
          ...(req.sourceSha256 ? { sourceSha256: req.sourceSha256 } : {}),
          trustedKeys: [req.publicKey],
          resume: true,
          journalPath: join(opts.journalDir, `${basename(req.target)}.journal`),
          onProgress: (p) => {
            if (p.phase === "write") req.onProgress?.(p.done, p.total);
          },
        });
      } catch (err) {
        if (err instanceof WrongSourceError) throw new PayloadSourceError(err.message);
        throw err;
      }
      return {
        sha256: r.sha256,
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
