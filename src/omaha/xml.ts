/**
 * The XML layer of the Omaha codec: a strict, entity-free parse into plain objects and the
 * escaping our own encoder uses. DTDs are refused outright and no entity other than the five
 * predefined ones and numeric character references is expanded, so XXE and "billion laughs"
 * bodies cannot do anything.
 */
import { XMLParser, XMLValidator } from "fast-xml-parser";

export class OmahaDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OmahaDecodeError";
  }
}

/** Limits that keep a hostile body from costing more than a real one. */
export const MAX_XML_BYTES = 256 * 1024;
const MAX_ATTRIBUTE_LENGTH = 4096;

export const ATTR = "@_";

/** Element names that may repeat; always parsed as arrays so shapes stay stable. */
const REPEATED = new Set(["app", "event", "url", "package", "action"]);

const parser = new XMLParser({
  ignoreAttributes: false,
  attributeNamePrefix: ATTR,
  processEntities: false,
  htmlEntities: false,
  parseAttributeValue: false,
  parseTagValue: false,
  ignoreDeclaration: true,
  ignorePiTags: true,
  isArray: (name) => REPEATED.has(name),
});

export type XmlNode = Record<string, unknown>;

/** Parse `text` into a tree; throws OmahaDecodeError for anything that is not plain XML. */
export function parseXml(text: string): XmlNode {
  if (text.length > MAX_XML_BYTES) {
    throw new OmahaDecodeError(`body is ${text.length} bytes, limit ${MAX_XML_BYTES}`);
  }
  if (/<!DOCTYPE|<!ENTITY|<!\[CDATA\[/i.test(text)) {
    throw new OmahaDecodeError("DTDs, entity declarations and CDATA are not accepted");
  }
  const valid = XMLValidator.validate(text);
  if (valid !== true) {
    throw new OmahaDecodeError(`malformed XML at line ${valid.err.line}: ${valid.err.msg}`);
  }
  try {
    return parser.parse(text) as XmlNode;
  } catch (err) {
    throw new OmahaDecodeError(`malformed XML: ${(err as Error).message}`);
  }
}

const PREDEFINED: Record<string, string> = {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
};

/** Resolve the predefined entities and character references in an attribute value. */
export function unescapeXml(raw: string): string {
  if (raw.length > MAX_ATTRIBUTE_LENGTH) {
    throw new OmahaDecodeError(`attribute value longer than ${MAX_ATTRIBUTE_LENGTH} characters`);
  }
  if (!raw.includes("&")) return raw;
  return raw.replace(/&([^;]{0,10});?/g, (whole, name: string) => {
    if (!whole.endsWith(";")) throw new OmahaDecodeError("bare '&' in attribute value");
    const predefined = PREDEFINED[name];
    if (predefined !== undefined) return predefined;
    const num = /^#x([0-9a-fA-F]{1,6})$/.exec(name) ?? /^#([0-9]{1,7})$/.exec(name);
    if (num) {
      const code = Number.parseInt(num[1]!, name.startsWith("#x") ? 16 : 10);
      if (code > 0 && code <= 0x10ffff) return String.fromCodePoint(code);
    }
    throw new OmahaDecodeError(`unknown entity '&${name};'`);
  });
}

export function escapeXml(value: string): string {
  return value.replace(
    /[<>&"']/g,
    (c) =>
      `&${c === "<" ? "lt" : c === ">" ? "gt" : c === "&" ? "amp" : c === '"' ? "quot" : "apos"};`,
  );
}

/** Read attribute `name` of `node` (unescaped), or undefined. */
export function attr(node: XmlNode, name: string): string | undefined {
  const v = node[ATTR + name];
  if (v === undefined) return undefined;
  if (typeof v !== "string") throw new OmahaDecodeError(`attribute ${name} is not text`);
  return unescapeXml(v);
}

/** Child element(s) `name` as a list of nodes (empty elements parse as ""). */
export function children(node: XmlNode, name: string): XmlNode[] {
  const v = node[name];
  if (v === undefined) return [];
  const list = Array.isArray(v) ? v : [v];
  return list.map((c) => (typeof c === "object" && c !== null ? (c as XmlNode) : {}));
}

export function child(node: XmlNode, name: string): XmlNode | undefined {
  const list = children(node, name);
  if (list.length > 1) throw new OmahaDecodeError(`more than one <${name}>`);
  return list[0];
}

/** An integer attribute; throws when present but not a decimal integer. */
export function intAttr(node: XmlNode, name: string): number | undefined {
  const v = attr(node, name);
  if (v === undefined || v === "") return undefined;
  if (!/^-?\d{1,15}$/.test(v))
    throw new OmahaDecodeError(`attribute ${name}="${v}" is not an integer`);
  return Number(v);
}

export function boolAttr(node: XmlNode, name: string): boolean | undefined {
  const v = attr(node, name);
  if (v === undefined) return undefined;
  return v === "1" || v.toLowerCase() === "true";
}

/** Serialise attributes, skipping undefined values. */
export function attrs(pairs: [string, string | number | boolean | undefined][]): string {
  let out = "";
  for (const [k, v] of pairs) {
    if (v === undefined) continue;
    out += ` ${k}="${escapeXml(typeof v === "boolean" ? (v ? "true" : "false") : String(v))}"`;
  }
  return out;
}
