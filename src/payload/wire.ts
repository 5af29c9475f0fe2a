/**
 * The binary encoding of the payload's head and plan bodies (format 3):
 * unsigned LEB128 varints, zigzag varints for signed numbers, raw 32-byte
 * SHA-256s, length-prefixed UTF-8 strings. A one-file delta's whole
 * download is a few hundred bytes, so hex hashes in JSON (twice the bytes,
 * and incompressible) were most of it.
 */
import { InputError } from "../errors.ts";

export class WireWriter {
  private readonly bytes: number[] = [];

  u8(n: number): this {
    this.bytes.push(n & 255);
    return this;
  }

  varint(n: number): this {
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`varint out of range: ${n}`);
    while (n >= 128) {
      this.bytes.push((n % 128) | 128);
      n = Math.floor(n / 128);
    }
    this.bytes.push(n);
    return this;
  }

  /** Signed: 0, -1, 1, -2, 2… as 0, 1, 2, 3, 4… */
  zigzag(n: number): this {
    return this.varint(n < 0 ? -2 * n - 1 : 2 * n);
  }

  raw(b: Uint8Array): this {
    for (const x of b) this.bytes.push(x);
    return this;
  }

  /** A SHA-256 given as 64 hex digits, stored as its 32 bytes. */
  sha256(hex: string): this {
    const b = Buffer.from(hex, "hex");
    if (b.length !== 32) throw new Error(`not a SHA-256: ${hex}`);
    return this.raw(b);
  }

  str(s: string): this {
    const b = Buffer.from(s, "utf8");
    return this.varint(b.length).raw(b);
  }

  toBuffer(): Buffer {
    return Buffer.from(this.bytes);
  }
}

/** Reads what WireWriter wrote; any overrun or malformed number is an InputError naming `what`. */
export class WireReader {
  pos = 0;
  private readonly buf: Buffer;
  private readonly what: string;
  private readonly where: string;

  constructor(buf: Buffer, what: string, where: string) {
    this.buf = buf;
    this.what = what;
    this.where = where;
  }

  fail(problem: string): never {
    throw new InputError(`${this.what}: ${problem} at byte ${this.pos}`, { where: this.where });
  }

  get left(): number {
    return this.buf.length - this.pos;
  }

  u8(): number {
    if (this.pos >= this.buf.length) this.fail("truncated");
    return this.buf[this.pos++]!;
  }

  varint(): number {
    let n = 0;
    let scale = 1;
    for (let i = 0; i < 8; i++) {
      const b = this.u8();
      n += (b & 127) * scale;
      if (b < 128) {
        // One spelling per number: no trailing zero groups.
        if (b === 0 && i > 0) this.fail("overlong number");
        if (!Number.isSafeInteger(n)) this.fail("number out of range");
        return n;
      }
      scale *= 128;
    }
    return this.fail("number out of range");
  }

  zigzag(): number {
    const z = this.varint();
    return z % 2 === 0 ? z / 2 : -(z + 1) / 2;
  }

  raw(n: number): Buffer {
    if (n > this.left) this.fail("truncated");
    const b = this.buf.subarray(this.pos, this.pos + n);
    this.pos += n;
    return b;
  }

  sha256(): string {
    return this.raw(32).toString("hex");
  }

  str(): string {
    const b = this.raw(this.varint());
    const s = b.toString("utf8");
    if (!Buffer.from(s, "utf8").equals(b)) this.fail("string is not UTF-8");
    return s;
  }

  /** A count of items each at least `minBytes` long: bounded by what is left. */
  count(minBytes: number): number {
    const n = this.varint();
    if (n * minBytes > this.left) this.fail("count larger than the data");
    return n;
  }

  end(): void {
    if (this.left !== 0) this.fail(`${this.left} unexpected trailing bytes`);
  }
}
