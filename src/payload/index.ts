/**
 * The payload library: what the agent and the CLI use.
 *
 *   applyPayload({ payload, target, source?, trustedKeys, resume?, onProgress? })
 *     → rebuilds the USR image on `target`, resolves only when it verifies.
 *   verifyPayload(payload, trustedKeys) → signature + every blob, no writes.
 *   inspectPayload(payload) → what is inside (signatures NOT checked).
 *   createPayload({ target, sources?, keys, output, version, kernel?, initrd? })
 *   generateKeyPair("ed25519" | "rsa")
 *
 * The apply side (apply, verify, inspect, reader, keys) runs on Node 20 and
 * bundles with esbuild; create and delta are build-host only.
 */
export type { ApplyOptions, ApplyProgress, ApplyResult } from "./apply.ts";
export { applyPayload, WrongSourceError } from "./apply.ts";
export type { CreateOptions, CreateResult } from "./create.ts";
export { createPayload } from "./create.ts";
export type { Manifest } from "./format.ts";
export { generateKeyPair, type KeyInput, keyId, loadPrivateKey, loadPublicKey } from "./keys.ts";
export { fileReader, httpReader, type PayloadReader } from "./reader.ts";
export type { PayloadSummary } from "./verify.ts";
export { inspectPayload, verifyPayload } from "./verify.ts";
