/**
 * Errors that reach the user. `exitCode` follows the CLI convention:
 * 1 = the operation failed, 2 = bad usage or bad input (nothing was changed).
 */
export class SlipwayError extends Error {
  readonly exitCode: number;
  /** Where the problem is: a file, a file:line, a disk, a config key. */
  readonly where: string | undefined;

  constructor(message: string, opts: { where?: string; exitCode?: number; cause?: unknown } = {}) {
    super(opts.where ? `${opts.where}: ${message}` : message, { cause: opts.cause });
    this.name = "SlipwayError";
    this.where = opts.where;
    this.exitCode = opts.exitCode ?? 1;
  }
}

/** Bad input from the user (config, arguments, a damaged file): exit code 2. */
export class InputError extends SlipwayError {
  constructor(message: string, opts: { where?: string; cause?: unknown } = {}) {
    super(message, { ...opts, exitCode: 2 });
    this.name = "InputError";
  }
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_USAGE = 2;
