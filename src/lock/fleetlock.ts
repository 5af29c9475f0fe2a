/**
 * FleetLock client (Zincati's protocol): `POST <base>/v1/pre-reboot` takes a
 * place, `POST <base>/v1/steady-state` gives it back. 200 means done; any
 * other answer carries `{"kind","value"}` and means "not now".
 */
import { SlipwayError } from "../errors.ts";
import { requestText } from "./http.ts";
import { validateGroup, validateHolderId } from "./semaphore.ts";
import type { RebootLock } from "./types.ts";

export interface FleetLockOptions {
  baseUrl: string;
  id: string;
  group: string;
  timeoutMs?: number;
}

export class FleetLockError extends SlipwayError {
  readonly kind: string;
  constructor(kind: string, message: string, where: string) {
    super(message, { where });
    this.name = "FleetLockError";
    this.kind = kind;
  }
}

export class FleetLockClient implements RebootLock {
  readonly describe: string;
  private readonly base: string;
  private readonly id: string;
  private readonly group: string;
  private readonly timeoutMs: number;

  constructor(opts: FleetLockOptions) {
    this.base = opts.baseUrl.replace(/\/+$/, "");
    this.id = validateHolderId(opts.id);
    this.group = validateGroup(opts.group, "FleetLock group");
    this.timeoutMs = opts.timeoutMs ?? 10_000;
    this.describe = `FleetLock ${this.base} group ${this.group}`;
  }

  private async post(op: "pre-reboot" | "steady-state"): Promise<void> {
    const url = `${this.base}/v1/${op}`;
    let res: { status: number; text: string };
    try {
      res = await requestText(url, {
        method: "POST",
        headers: { "fleet-lock-protocol": "true", "content-type": "application/json" },
        body: JSON.stringify({ client_params: { id: this.id, group: this.group } }),
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      throw new FleetLockError(
        "unreachable",
        `FleetLock server unreachable: ${(err as Error).message}`,
        url,
      );
    }
    const text = res.text;
    if (res.status === 200) return;
    let kind = `http-${res.status}`;
    let value = text.slice(0, 300);
    try {
      const body = JSON.parse(text) as { kind?: unknown; value?: unknown };
      if (typeof body.kind === "string") kind = body.kind;
      if (typeof body.value === "string") value = body.value;
    } catch {
      // Not JSON: keep the raw text.
    }
    throw new FleetLockError(kind, `${op} refused (${res.status} ${kind}): ${value}`, url);
  }

  /** False when the server says the group is full; other failures throw. */
  async acquire(): Promise<boolean> {
    try {
      await this.post("pre-reboot");
      return true;
    } catch (err) {
      if (
        err instanceof FleetLockError &&
        err.kind !== "unreachable" &&
        !err.kind.startsWith("http-5")
      )
        return false;
      throw err;
    }
  }

  async release(): Promise<void> {
    await this.post("steady-state");
  }
}
