/**
 * The XML layer of the Omaha codec: a small strict parser for the XML subset Omaha uses
 * (elements, attributes, text, comments, processing instructions) and the escaping the
 * encoder uses. DTDs and CDATA are refused outright; only the five predefined entities and
 * numeric character references are resolved, so XXE and "billion laughs" bodies cannot do
 * anything. Hand-written because it is the hot path of every update check (a general XML
 * library cost ~10× more per request).
 */

export class OmahaDecodeError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "OmahaDecodeError";
  }
}

/** Limits that keep a hostile body from costing more than a real one. */
export const MAX_XML_BYTES = 256 * 1024;
const MAX_ATTRIBUTE_LENGTH = 4096;
const MAX_DEPTH = 16;
const MAX_ELEMENTS = 2000;

export interface XmlElement {
  name: string;
  /** Attribute values, entities already resolved. */
  attrs: Map<string, string>;
  children: XmlElement[];
}

const NAME = /[A-Za-z_:][-A-Za-z0-9_:.]*/y;
const SPACE = /[ \t\r\n]*/y;
const ATTR_WHITESPACE = /[\t\n\r]/;

const isSpace = (c: number) => c === 0x20 || c === 0x09 || c === 0x0a || c === 0x0d;

/** Parse `text` into its root element; throws OmahaDecodeError for anything not well-formed. */
export function parseXml(text: string): XmlElement {
  if (text.length > MAX_XML_BYTES) {
    throw new OmahaDecodeError(`body is ${text.length} bytes, limit ${MAX_XML_BYTES}`);
  }
  let pos = text.charCodeAt(0) === 0xfeff ? 1 : 0;
  const fail = (what: string): never => {
    const line = text.slice(0, pos).split("\n").length;
    throw new OmahaDecodeError(`malformed XML at line ${line}: ${what}`);
  };
  const skipSpace = () => {
    SPACE.lastIndex = pos;
    SPACE.test(text);
    pos = SPACE.lastIndex;
  };
  const readName = (): string => {
    NAME.lastIndex = pos;
    const m = NAME.exec(text);
    if (!m) return fail("expected a name");
    pos = NAME.lastIndex;
    return m[0];
  };
  const skipUntil = (end: string, what: string) => {
    const i = text.indexOf(end, pos);
    if (i < 0) fail(`unterminated ${what}`);
    pos = i + end.length;
  };
  /** Comments, processing instructions and whitespace between elements. */
  const skipMisc = (): void => {
    for (;;) {
      skipSpace();
      if (text.startsWith("<?", pos)) skipUntil("?>", "processing instruction");
      else if (text.startsWith("<!--", pos)) skipUntil("-->", "comment");
      else return;
    }
  };

  skipMisc();
  if (text.startsWith("<!", pos)) fail("DTDs, entity declarations and CDATA are not accepted");
  if (text[pos] !== "<") fail("no root element");

  const stack: XmlElement[] = [];
  let root: XmlElement | undefined;
  let elements = 0;
  let nextAmp = -1;
  while (pos < text.length) {
    if (text.charCodeAt(pos) !== 0x3c /* < */) {
      const next = text.indexOf("<", pos);
      const end = next < 0 ? text.length : next;
      // Mostly the indentation between elements: checked in place, sliced only when needed.
      // The next '&' is searched once per '&', not per chunk: a scan per chunk would make a
      // body of many small chunks quadratic.
      if (nextAmp < pos) {
        const i = text.indexOf("&", pos);
        nextAmp = i < 0 ? text.length : i;
      }
      if (stack.length === 0) {
        if (text.slice(pos, end).trim() !== "") fail("text outside the root element");
      } else if (nextAmp < end) {
        unescapeXml(text.slice(pos, end), Number.POSITIVE_INFINITY);
      }
      pos = end;
      continue;
    }
    const second = text.charCodeAt(pos + 1);
    if (second === 0x21 /* ! */) {
      if (text.startsWith("<!--", pos)) {
        skipUntil("-->", "comment");
        continue;
      }
      fail("DTDs, entity declarations and CDATA are not accepted");
    }
    if (second === 0x3f /* ? */) {
      skipUntil("?>", "processing instruction");
      continue;
    }
    if (second === 0x2f /* / */) {
      pos += 2;
      const name = readName();
      skipSpace();
      if (text[pos] !== ">") fail(`expected '>' after </${name}`);
      pos++;
      const open = stack.pop();
      if (!open || open.name !== name) fail(`</${name}> does not close <${open?.name ?? ""}>`);
      if (stack.length === 0) break;
      continue;
    }
    if (root && stack.length === 0) fail("more than one root element");
    pos++;
    const el: XmlElement = { name: readName(), attrs: new Map(), children: [] };
    if (++elements > MAX_ELEMENTS) fail(`more than ${MAX_ELEMENTS} elements`);
    let selfClosing = false;
    for (;;) {
      const before = pos;
      // A single space between attributes is the common case: no regex call for it.
      if (text.charCodeAt(pos) === 0x20 && !isSpace(text.charCodeAt(pos + 1))) pos++;
      else skipSpace();
      const c = text.charCodeAt(pos);
      if (c === 0x3e /* > */) {
        pos++;
        break;
      }
      if (c === 0x2f /* / */ && text.charCodeAt(pos + 1) === 0x3e) {
        pos += 2;
        selfClosing = true;
        break;
      }
      if (pos === before) fail(`expected whitespace, '>' or '/>' in <${el.name}>`);
      const name = readName();
      if (text.charCodeAt(pos) === 0x3d /* = */) pos++;
      else {
        skipSpace();
        if (text[pos] !== "=") fail(`attribute ${name} without a value`);
        pos++;
        skipSpace();
      }
      const quote = text.charCodeAt(pos);
      if (quote !== 0x22 && quote !== 0x27) fail(`attribute ${name}: value not quoted`);
      const end = text.indexOf(quote === 0x22 ? '"' : "'", pos + 1);
      if (end < 0) fail(`attribute ${name}: unterminated value`);
      const raw = text.slice(pos + 1, end);
      if (raw.includes("<")) fail(`attribute ${name}: '<' in value`);
      if (el.attrs.has(name)) fail(`attribute ${name} repeated`);
      // Literal tabs/newlines normalise to spaces (XML attribute-value normalisation);
      // character references to them survive.
      el.attrs.set(
        name,
        unescapeXml(
          ATTR_WHITESPACE.test(raw) ? raw.replace(/[\t\n\r]/g, " ") : raw,
          MAX_ATTRIBUTE_LENGTH,
        ),
      );
      pos = end + 1;
    }
    const parent = stack[stack.length - 1];
    if (parent) parent.children.push(el);
    else root = el;
    if (!selfClosing) {
      stack.push(el);
      if (stack.length > MAX_DEPTH) fail(`nested deeper than ${MAX_DEPTH}`);
    } else if (stack.length === 0) break;
  }
  if (!root || stack.length > 0)
    return fail(`unclosed <${stack[stack.length - 1]?.name ?? "root"}>`);
  skipMisc();
  if (pos < text.length) fail("content after the root element");
  return root;
}

const PREDEFINED: Record<string, string> = {
  lt: "<",
  gt: ">",
  amp: "&",
  quot: '"',
  apos: "'",
};

/** Resolve the predefined entities and character references; anything else is an error. */
export function unescapeXml(raw: string, maxLength = MAX_ATTRIBUTE_LENGTH): string {
  if (raw.length > maxLength) {
    throw new OmahaDecodeError(`attribute value longer than ${maxLength} characters`);
  }
  if (!raw.includes("&")) return raw;
  return raw.replace(/&([^;&]{0,10})(;?)/g, (_whole, name: string, semi: string) => {
    if (!semi) throw new OmahaDecodeError("bare '&' in XML text");
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

const ESCAPES: Record<string, string> = {
  "<": "&lt;",
  ">": "&gt;",
  "&": "&amp;",
  '"': "&quot;",
  "'": "&apos;",
  "\t": "&#9;",
  "\n": "&#10;",
  "\r": "&#13;",
};

const NEEDS_ESCAPE = /[<>&"'\t\n\r]/;

export function escapeXml(value: string): string {
  // Most values need nothing: a test is cheaper than a replace that copies nothing.
  return NEEDS_ESCAPE.test(value) ? value.replace(/[<>&"'\t\n\r]/g, (c) => ESCAPES[c]!) : value;
}

/** Attribute `name` of `el`, or undefined. */
export function attr(el: XmlElement, name: string): string | undefined {
  return el.attrs.get(name);
}

/** Child elements called `name`. */
export function children(el: XmlElement, name: string): XmlElement[] {
  return el.children.filter((c) => c.name === name);
}

/** The child element called `name`; more than one is an error. */
export function child(el: XmlElement, name: string): XmlElement | undefined {
  let found: XmlElement | undefined;
  for (const c of el.children) {
    if (c.name !== name) continue;
    if (found) throw new OmahaDecodeError(`more than one <${name}>`);
    found = c;
  }
  return found;
}

/** An integer attribute; throws when present but not a decimal integer. */
export function intAttr(el: XmlElement, name: string): number | undefined {
  const v = attr(el, name);
  if (v === undefined || v === "") return undefined;
  if (!/^-?\d{1,15}$/.test(v))
    throw new OmahaDecodeError(`attribute ${name}="${v}" is not an integer`);
  return Number(v);
}

export function boolAttr(el: XmlElement, name: string): boolean | undefined {
  const v = attr(el, name);
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
