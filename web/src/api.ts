/**
 * The admin API as the dashboard sees it: JSON shapes (mirroring src/server/admin/serialize.ts)
 * and one fetch wrapper that adds the bearer token and turns error bodies into ApiError.
 */

export type Scope = "admin" | "viewer";

export interface App {
  id: string;
  name: string;
  description: string;
  createdAt: number;
}

export interface Package {
  id: string;
  appId: string;
  version: string;
  filename: string;
  url: string | null;
  size: number;
  sha256: string;
  signature: string | null;
  metadataSize: number | null;
  createdAt: number;
}

export interface Channel {
  id: string;
  appId: string;
  name: string;
  package: string | null;
  allowDowngrade: boolean;
  floors: string[];
  blacklist: string[];
  createdAt: number;
}

export interface Policy {
  updatesEnabled: boolean;
  safeMode: boolean;
  maxUpdatesPerPeriod: number;
  periodIntervalS: number;
  updateTimeoutS: number;
  officeHours: boolean;
  timezone: string;
  officeStart: string;
  officeEnd: string;
}

export interface Group {
  id: string;
  appId: string;
  name: string;
  track: string;
  channel: string | null;
  policy: Policy;
  haltedReason: string | null;
  createdAt: number;
}

export interface Rollout {
  group: Group;
  /** The version the group's channel points at. */
  target: string | null;
  versions: Record<string, number>;
  statuses: Record<string, number>;
}

export const STATUSES = [
  "undefined",
  "update-granted",
  "downloading",
  "downloaded",
  "installed",
  "complete",
  "error",
  "on-hold",
] as const;

export const IN_PROGRESS: readonly string[] = [
  "update-granted",
  "downloading",
  "downloaded",
  "installed",
];

export interface Instance {
  appId: string;
  machineId: string;
  alias: string;
  ip: string;
  oem: string;
  oemVersion: string;
  version: string;
  track: string;
  groupId: string | null;
  status: string;
  updateVersion: string | null;
  updateGrantedAt: number | null;
  errorCode: number | null;
  lastCheckAt: number;
  createdAt: number;
}

export interface InstanceEvent {
  id: number;
  type: number;
  result: number;
  errorCode: number | null;
  version: string;
  previousVersion: string | null;
  createdAt: number;
}

export interface Activity {
  id: number;
  appId: string | null;
  groupId: string | null;
  channelId: string | null;
  severity: "info" | "success" | "warning" | "error" | "critical";
  class: string;
  version: string;
  message: string;
  createdAt: number;
}

export class ApiError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

export interface Client {
  get<T>(path: string): Promise<T>;
  send<T>(method: "POST" | "PATCH" | "PUT" | "DELETE", path: string, body?: unknown): Promise<T>;
}

/** `onUnauthorized` runs when the server no longer knows the token (revoked, other database). */
export function client(token: string, onUnauthorized?: () => void): Client {
  const call = async <T>(method: string, path: string, body?: unknown): Promise<T> => {
    const headers: Record<string, string> = { authorization: `Bearer ${token}` };
    let payload: Blob | string | undefined;
    if (body instanceof Blob) {
      headers["content-type"] = "application/octet-stream";
      payload = body;
    } else if (body !== undefined) {
      headers["content-type"] = "application/json";
      payload = JSON.stringify(body);
    }
    const res = await fetch(path, { method, headers, body: payload });
    if (res.status === 204) return undefined as T;
    const text = await res.text();
    let json: unknown;
    try {
      json = text ? JSON.parse(text) : undefined;
    } catch {
      json = undefined;
    }
    if (res.status === 401) onUnauthorized?.();
    if (!res.ok) {
      const msg =
        json && typeof json === "object" && "error" in json ? String(json.error) : res.statusText;
      throw new ApiError(res.status, msg || `HTTP ${res.status}`);
    }
    return json as T;
  };
  return {
    get: (path) => call("GET", path),
    send: (method, path, body) => call(method, path, body),
  };
}

/** The token's scope from GET /api/session (throws ApiError 401 for an unknown token). */
export async function probeScope(token: string): Promise<Scope> {
  return (await client(token).get<{ scope: Scope }>("/api/session")).scope;
}

export interface Token {
  id: string;
  name: string;
  scope: Scope;
  createdAt: number;
}

export interface LockGroup {
  name: string;
  maxSlots: number;
  holders: { id: string; acquiredAt: number }[];
}

export const enc = encodeURIComponent;
