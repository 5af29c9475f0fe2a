/**
 * A small HTTP client on node:http/https for the agent and the lock
 * clients. Not fetch: on Node 20 the first fetch loads undici and costs the
 * daemon ~15 MB of resident memory, a quarter of its budget.
 */
import { request as httpRequest, type IncomingMessage } from "node:http";
import { request as httpsRequest } from "node:https";

export interface HttpOptions {
  method?: string;
  headers?: Record<string, string>;
  body?: string | Buffer;
  /** Whole-request inactivity timeout. */
  timeoutMs?: number;
}

export class HttpError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "HttpError";
  }
}

/** Resolves with the response head; the caller reads (or discards) the body stream. */
export function request(url: string, opts: HttpOptions = {}): Promise<IncomingMessage> {
  return new Promise((resolve, reject) => {
    let u: URL;
    try {
      u = new URL(url);
    } catch {
      reject(new HttpError(`not a URL: ${url}`));
      return;
    }
    const send =
      u.protocol === "https:" ? httpsRequest : u.protocol === "http:" ? httpRequest : undefined;
    if (!send) {
      reject(new HttpError(`unsupported URL scheme ${u.protocol}`));
      return;
    }
    const headers: Record<string, string | number> = { ...opts.headers };
    if (opts.body !== undefined) headers["content-length"] = Buffer.byteLength(opts.body);
    const req = send(u, { method: opts.method ?? "GET", headers }, resolve);
    req.setTimeout(opts.timeoutMs ?? 30_000, () => {
      req.destroy(new HttpError(`no answer within ${opts.timeoutMs ?? 30_000} ms`));
    });
    req.on("error", (err: NodeJS.ErrnoException) => {
      reject(new HttpError(err.code ? `${err.code} ${err.message}` : err.message));
    });
    req.end(opts.body);
  });
}

export async function readBody(res: IncomingMessage, limit = 16 * 1024 * 1024): Promise<string> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const c of res) {
    size += (c as Buffer).length;
    if (size > limit) {
      res.destroy();
      throw new HttpError(`answer larger than ${limit} bytes`);
    }
    chunks.push(c as Buffer);
  }
  return Buffer.concat(chunks).toString("utf8");
}

/** Request and read the whole answer as text. */
export async function requestText(
  url: string,
  opts: HttpOptions = {},
): Promise<{ status: number; text: string }> {
  const res = await request(url, opts);
  return { status: res.statusCode ?? 0, text: await readBody(res) };
}
