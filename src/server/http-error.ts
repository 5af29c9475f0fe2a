/** Errors the HTTP layer turns into a status and a JSON `{error}` body. */
export class HttpError extends Error {
  readonly statusCode: number;
  constructor(statusCode: number, message: string) {
    super(message);
    this.statusCode = statusCode;
  }
}

export const notFound = (what: string) => new HttpError(404, `${what} not found`);
export const badRequest = (msg: string) => new HttpError(400, msg);

/** A unique-key violation from SQLite or PostgreSQL (→ 409). */
export function isUniqueViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === "23505" || /UNIQUE constraint failed/.test(e?.message ?? "");
}

/** A foreign-key violation (→ 409: something still refers to it / it refers to nothing). */
export function isForeignKeyViolation(err: unknown): boolean {
  const e = err as { code?: string; message?: string };
  return e?.code === "23503" || /FOREIGN KEY constraint failed/.test(e?.message ?? "");
}
