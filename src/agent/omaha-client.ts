/**
 * The agent's side of Omaha v3: update checks and event reports over HTTP
 * POST, with the codec from src/omaha. Server trouble (network, 5xx, an
 * error status) is an OmahaServerError so the scheduler backs off.
 */

import { SlipwayError } from "../errors.ts";
import { requestText } from "../lock/http.ts";
import {
  decodeResponse,
  encodeRequest,
  type OmahaRequest,
  type RequestEvent,
  type ResponseApp,
  type ResponseUpdateCheck,
} from "../omaha/index.ts";

export const AGENT_VERSION = "slipway-agent-0.1.0";

export class OmahaServerError extends SlipwayError {
  constructor(message: string, where: string, cause?: unknown) {
    super(message, { where, cause });
    this.name = "OmahaServerError";
  }
}

export interface OmahaIdentity {
  server: string;
  appId: string;
  machineId: string;
  bootId: string;
  track: string;
  version: string;
}

export class OmahaClient {
  private readonly id: OmahaIdentity;
  private readonly timeoutMs: number;

  constructor(id: OmahaIdentity, timeoutMs = 60_000) {
    this.id = id;
    this.timeoutMs = timeoutMs;
  }

  private async post(
    body: Omit<OmahaRequest, "protocol" | "apps">,
    app: Partial<OmahaRequest["apps"][number]>,
  ): Promise<ResponseApp> {
    const req: OmahaRequest = {
      protocol: "3.0",
      version: AGENT_VERSION,
      updaterVersion: AGENT_VERSION,
      isMachine: true,
      os: { version: "Linux", platform: "slipway", sp: `${this.id.version}_x86_64`, arch: "x64" },
      ...body,
      apps: [
        {
          appId: this.id.appId,
          version: this.id.version,
          track: this.id.track,
          bootId: this.id.bootId,
          machineId: this.id.machineId,
          board: "amd64-usr",
          deltaOkay: true,
          events: [],
          ...app,
        },
      ],
    };
    const where = this.id.server;
    let res: { status: number; text: string };
    try {
      res = await requestText(this.id.server, {
        method: "POST",
        headers: { "content-type": "text/xml" },
        body: encodeRequest(req),
        timeoutMs: this.timeoutMs,
      });
    } catch (err) {
      throw new OmahaServerError(
        `update server unreachable: ${(err as Error).message}`,
        where,
        err,
      );
    }
    const text = res.text;
    if (res.status !== 200) {
      throw new OmahaServerError(`update server answered HTTP ${res.status}`, where);
    }
    let answer: ResponseApp | undefined;
    try {
      answer = decodeResponse(text).apps.find((a) => a.appId === this.id.appId);
    } catch (err) {
      throw new OmahaServerError(`bad Omaha response: ${(err as Error).message}`, where, err);
    }
    if (!answer) throw new OmahaServerError(`response has no app ${this.id.appId}`, where);
    if (answer.status !== "ok") throw new OmahaServerError(`server says ${answer.status}`, where);
    return answer;
  }

  setVersion(version: string): void {
    this.id.version = version;
  }

  /** `deltaOkay: false` asks for the full payload (after a delta did not fit this host). */
  async updateCheck(
    installSource: "scheduler" | "ondemandupdate",
    opts: { deltaOkay?: boolean } = {},
  ): Promise<ResponseUpdateCheck> {
    const app = await this.post(
      { installSource },
      { ping: { active: 1 }, updateCheck: {}, deltaOkay: opts.deltaOkay ?? true },
    );
    const uc = app.updateCheck;
    if (!uc) throw new OmahaServerError("response has no <updatecheck>", this.id.server);
    if (uc.status !== "ok" && uc.status !== "noupdate") {
      throw new OmahaServerError(`update check status ${uc.status}`, this.id.server);
    }
    return uc;
  }

  async event(ev: RequestEvent): Promise<void> {
    await this.post({ installSource: "scheduler" }, { events: [ev] });
  }
}
