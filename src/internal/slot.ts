/**
 * Redis Cluster key slots: CRC16 (XMODEM) of the key's hash tag (the text between the first `{` and the next `}`
 * when it is not empty), or of the whole key, modulo 16384.
 *
 * @internal
 */

const table = (() => {
  const result = new Uint16Array(256)
  for (let byte = 0; byte < 256; byte++) {
    let crc = byte << 8
    for (let bit = 0; bit < 8; bit++) crc = crc & 0x8000 ? ((crc << 1) ^ 0x1021) & 0xffff : (crc << 1) & 0xffff
    result[byte] = crc
  }
  return result
})()

/** CRC16 (XMODEM, the Cluster's key hash) of `bytes`. */
export const crc16 = (bytes: Uint8Array): number => {
  let crc = 0
  for (const byte of bytes) crc = ((crc << 8) & 0xffff) ^ (table[((crc >> 8) ^ byte) & 0xff] as number)
  return crc
}

/** The part of a key that decides its slot: its hash tag, or the whole key. */
const hashed = (key: string): string => {
  const open = key.indexOf("{")
  if (open === -1) return key
  const close = key.indexOf("}", open + 1)
  return close === -1 || close === open + 1 ? key : key.slice(open + 1, close)
}

/** The cluster slot of `key` (0–16383). */
export const slotOf = (key: string): number => crc16(Buffer.from(hashed(key))) % 16384

const tags = new Map<number, string>()

/**
 * A short text whose slot is `slot`: a key with `{tag}` in it lives in that slot, next to any other key of the slot
 * (found by trying base-36 numbers in turn: about 16,000 tries, once per slot).
 */
export const slotTag = (slot: number): string => {
  const known = tags.get(slot)
  if (known !== undefined) return known
  for (let n = 0; ; n++) {
    const tag = n.toString(36)
    const found = slotOf(tag)
    if (!tags.has(found)) tags.set(found, tag)
    if (found === slot) return tag
  }
}
