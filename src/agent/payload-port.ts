/**
 * What the agent needs from the payload engine (src/payload): check a
 * payload's signature without writing anything, and write the new USR image
 * into the passive slot (a delta reads the active slot as its source). The
 * engine also hands back the slot's kernel, initrd and dm-verity data, which
 * the agent installs on the ESP.
 */
export interface StagedSlot {
  version?: string;
  kernel?: Uint8Array;
  initrd?: Uint8Array;
  verity?: { rootHash: string; hashOffset: bigint | number };
  /** SHA-256 of the slot as written and read back (the next delta's source hash). */
  sha256?: string;
}

export interface ApplyRequest {
  payload: string;
  publicKey: string;
  /** Active slot device: the base of a delta. Never written. */
  source: string;
  /** Passive slot device: written. */
  target: string;
  /**
   * SHA-256 of the active slot when the agent knows it (it wrote and verified
   * that slot): a delta then skips hashing the source first.
   */
  sourceSha256?: string;
  onProgress?: (done: number, total: number) => void;
}

export interface PayloadEngine {
  /** Throws when the signature or metadata does not check out. */
  verify(payload: string, publicKey: string): Promise<void>;
  apply(req: ApplyRequest): Promise<StagedSlot>;
}

/** A delta that does not fit the active slot (wrong source version): a full payload would. */
export class PayloadSourceError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PayloadSourceError";
  }
}

export class PayloadVerifyError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "PayloadVerifyError";
  }
}
