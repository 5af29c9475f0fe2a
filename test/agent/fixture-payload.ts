/**
 * A stand-in payload format for agent tests until src/payload is wired in:
 * [u32 header length][header JSON][image][kernel][initrd], the header
 * carrying an Ed25519 signature over the SHA-256 of everything after it.
 * It exercises the same PayloadEngine contract the real engine fulfils.
 */
import { createHash, generateKeyPairSync, sign, verify } from "node:crypto";
import { closeSync, fsyncSync, openSync, readFileSync, writeSync } from "node:fs";
import { readFile } from "node:fs/promises";
import type { PayloadEngine } from "../../src/agent/payload-port.ts";
import { PayloadVerifyError } from "../../src/agent/payload-port.ts";

export function fixtureKeys(): { publicPem: string; privatePem: string } {
  const { publicKey, privateKey } = generateKeyPairSync("ed25519");
  return {
    publicPem: publicKey.export({ type: "spki", format: "pem" }).toString(),
    privatePem: privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
  };
}

export function makePayload(
  parts: { version: string; image: Buffer; kernel: Buffer; initrd: Buffer },
  privatePem: string,
): Buffer {
  const body = Buffer.concat([parts.image, parts.kernel, parts.initrd]);
  const digest = createHash("sha256").update(body).digest();
  const signature = sign(null, digest, privatePem).toString("base64");
  const header = Buffer.from(
    JSON.stringify({
      version: parts.version,
      image: parts.image.length,
      kernel: parts.kernel.length,
      initrd: parts.initrd.length,
      signature,
    }),
  );
  const len = Buffer.alloc(4);
  len.writeUInt32BE(header.length);
  return Buffer.concat([len, header, body]);
}

interface Header {
  version: string;
  image: number;
  kernel: number;
  initrd: number;
  signature: string;
}

function parse(buf: Buffer): { h: Header; body: Buffer } {
  const n = buf.readUInt32BE(0);
  return { h: JSON.parse(buf.subarray(4, 4 + n).toString()) as Header, body: buf.subarray(4 + n) };
}

/** `chunkDelayMs` slows slot writes down so tests can kill the agent mid-write. */
export function fixtureEngine(opts: { chunkDelayMs?: number } = {}): PayloadEngine {
  const check = async (payload: string, publicKey: string) => {
    const buf = await readFile(payload);
    const { h, body } = parse(buf);
    const digest = createHash("sha256").update(body).digest();
    if (!verify(null, digest, readFileSync(publicKey), Buffer.from(h.signature, "base64"))) {
      throw new PayloadVerifyError("payload signature does not verify");
    }
    return { h, body };
  };
  return {
    async verify(payload, publicKey) {
      await check(payload, publicKey);
    },
    async apply(req) {
      const { h, body } = await check(req.payload, req.publicKey);
      const fd = openSync(req.target, "r+");
      const CHUNK = 256 * 1024;
      try {
        for (let off = 0; off < h.image; off += CHUNK) {
          const end = Math.min(h.image, off + CHUNK);
          writeSync(fd, body, off, end - off, off);
          req.onProgress?.(end, h.image);
          if (opts.chunkDelayMs) await new Promise((r) => setTimeout(r, opts.chunkDelayMs));
        }
        fsyncSync(fd);
      } finally {
        closeSync(fd);
      }
      return {
        version: h.version,
        kernel: body.subarray(h.image, h.image + h.kernel),
        initrd: body.subarray(h.image + h.kernel),
      };
    },
  };
}
