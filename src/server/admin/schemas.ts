/** JSON-schema snippets for route validation; @fastify/swagger turns them into OpenAPI. */
export const str = (extra: Record<string, unknown> = {}) => ({ type: "string", ...extra });
export const int = (extra: Record<string, unknown> = {}) => ({ type: "integer", ...extra });
export const bool = { type: "boolean" } as const;
export const nullableStr = { type: ["string", "null"] } as const;

export function obj(properties: Record<string, unknown>, required: string[] = []) {
  return { type: "object", additionalProperties: false, properties, required } as const;
}

export const params = (...names: string[]) =>
  obj(Object.fromEntries(names.map((n) => [n, str({ minLength: 1, maxLength: 256 })])), names);

export const VERSION = str({ minLength: 1, maxLength: 128, pattern: "^[A-Za-z0-9._+~-]+$" });
export const NAME = str({ minLength: 1, maxLength: 128 });

export const groupPolicySchema = obj({
  updatesEnabled: bool,
  safeMode: bool,
  maxUpdatesPerPeriod: int({ minimum: 0, maximum: 1_000_000 }),
  periodIntervalS: int({ minimum: 1, maximum: 365 * 86400 }),
  updateTimeoutS: int({ minimum: 0, maximum: 365 * 86400 }),
  officeHours: bool,
  timezone: str({ minLength: 1, maxLength: 64 }),
  officeStart: str({ pattern: "^([01][0-9]|2[0-4]):[0-5][0-9]$" }),
  officeEnd: str({ pattern: "^([01][0-9]|2[0-4]):[0-5][0-9]$" }),
});

export const listQuery = obj({
  limit: int({ minimum: 1, maximum: 1000, default: 100 }),
  offset: int({ minimum: 0, default: 0 }),
});
