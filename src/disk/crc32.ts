/**
 * CRC-32 (IEEE 802.3, reflected polynomial 0xEDB88320), as GPT headers and
 * entry arrays use it. Table-driven in plain JS because the update agent runs
 * on Node 20, whose node:zlib has no crc32().
 */

const TABLE = (() => {
  const t = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    t[n] = c >>> 0;
  }
  return t;
})();

/** CRC-32 of `data`; pass a previous result as `crc` to continue over several buffers. */
export function crc32(data: Uint8Array, crc = 0): number {
  let c = ~crc >>> 0;
  for (let i = 0; i < data.length; i++) c = TABLE[(c ^ data[i]!) & 0xff]! ^ (c >>> 8);
  return ~c >>> 0;
}
