/**
 * Signing keys: Ed25519 (default) or RSA, PEM files, identified by a key id
 * (a prefix of the SHA-256 of the public key) so several keys can sign one
 * payload and clients can rotate what they trust.
 */
import {
  createHash,
  createPrivateKey,
  createPublicKey,
  generateKeyPairSync,
  type KeyObject,
  sign,
  verify,
} from "node:crypto";
import { readFileSync } from "node:fs";
import { InputError } from "../errors.ts";
import type { Signature } from "./format.ts";

export type KeyAlgorithm = "ed25519" | "rsa";

/** A key given as a KeyObject, a PEM string, or a path to a PEM file. */
export type KeyInput = KeyObject | string;

export function generateKeyPair(algorithm: KeyAlgorithm = "ed25519"): {
  privatePem: string;
  publicPem: string;
  keyId: string;
} {
  const pair =
    algorithm === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: 3072 })
      : generateKeyPairSync("ed25519");
  const privatePem = pair.privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  const publicPem = pair.publicKey.export({ type: "spki", format: "pem" }).toString();
  return { privatePem, publicPem, keyId: keyId(pair.publicKey) };
}

export function keyId(publicKey: KeyObject): string {
  const der = publicKey.export({ type: "spki", format: "der" });
  return createHash("sha256").update(der).digest("hex").slice(0, 16);
}

function pemOf(input: string): { pem: string; where: string } {
  if (input.includes("-----BEGIN")) return { pem: input, where: "key" };
  try {
    return { pem: readFileSync(input, "utf8"), where: input };
  } catch (err) {
    throw new InputError(`cannot read key: ${(err as Error).message}`, { where: input });
  }
}

function checkType(k: KeyObject, where: string): void {
  if (k.asymmetricKeyType !== "ed25519" && k.asymmetricKeyType !== "rsa")
    throw new InputError(`unsupported key type ${k.asymmetricKeyType} (want ed25519 or rsa)`, {
      where,
    });
}

export function loadPrivateKey(input: KeyInput): KeyObject {
  if (typeof input !== "string") return input;
  const { pem, where } = pemOf(input);
  let k: KeyObject;
  try {
    k = createPrivateKey(pem);
  } catch {
    throw new InputError("not a PEM private key", { where });
  }
  checkType(k, where);
  return k;
}

/** Accepts a public key, or a private key (its public half is used). */
export function loadPublicKey(input: KeyInput): KeyObject {
  if (typeof input !== "string") return input.type === "private" ? createPublicKey(input) : input;
  const { pem, where } = pemOf(input);
  let k: KeyObject;
  try {
    k = createPublicKey(pem);
  } catch {
    throw new InputError("not a PEM public key", { where });
  }
  checkType(k, where);
  return k;
}

export function signMessage(message: Buffer, privateKey: KeyObject): Signature {
  const pub = createPublicKey(privateKey);
  if (privateKey.asymmetricKeyType === "ed25519")
    return {
      keyId: keyId(pub),
      algorithm: "ed25519",
      value: sign(null, message, privateKey).toString("base64"),
    };
  return {
    keyId: keyId(pub),
    algorithm: "rsa-sha256",
    value: sign("sha256", message, privateKey).toString("base64"),
  };
}

/**
 * The trust decision: at least one signature by a trusted key must verify,
 * and no signature claiming a trusted key may fail (that is tampering).
 * Signatures by keys we do not know are ignored, which lets keys rotate.
 * Returns the key ids that verified.
 */
export function checkSignatures(
  message: Buffer,
  signatures: Signature[],
  trusted: KeyObject[],
  where: string,
): string[] {
  const byId = new Map(trusted.map((k) => [keyId(k), k]));
  const good: string[] = [];
  for (const s of signatures) {
    const key = byId.get(s.keyId);
    if (!key) continue;
    const wantAlg = key.asymmetricKeyType === "ed25519" ? "ed25519" : "rsa-sha256";
    let ok = false;
    if (s.algorithm === wantAlg) {
      try {
        const value = Buffer.from(s.value, "base64");
        // Only canonical base64: no second spelling of the same signature.
        ok =
          value.toString("base64") === s.value &&
          verify(wantAlg === "ed25519" ? null : "sha256", message, key, value);
      } catch {
        ok = false;
      }
    }
    if (!ok) throw new InputError(`signature by trusted key ${s.keyId} does not verify`, { where });
    good.push(s.keyId);
  }
  if (good.length === 0) {
    const ids = signatures.map((s) => s.keyId).join(", ");
    throw new InputError(`not signed by a trusted key (signed by: ${ids})`, { where });
  }
  return good;
}
