/**
 * Values made once per key rather than on every call (keys, property references of hot paths), remembering at most
 * `max` keys: beyond, it forgets them all and starts again, so a process that meets unbounded keys stays bounded.
 *
 * @internal
 */

/** `make`, remembered per key (at most `max` keys, default 10,000). */
export const remembered = <V>(make: (key: string) => V, max = 10_000): ((key: string) => V) => {
  const known = new Map<string, V>()
  return (key) => {
    const found = known.get(key)
    if (found !== undefined) return found
    const value = make(key)
    if (known.size >= max) known.clear()
    known.set(key, value)
    return value
  }
}
