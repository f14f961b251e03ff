/**
 * The one rule for the names and ids that become parts of Redis keys and tokens, in every capability: stream names,
 * run ids, kinds of live state. Letters, digits and `_ . : -`, 1 to 200 characters: no braces (hash tags), no
 * spaces, nothing a key layout or a URL would need to escape.
 *
 * @internal
 */

const safe = /^[A-Za-z0-9_.:-]{1,200}$/

/** The rule, as people read it in errors. */
export const rule = "1–200 characters of letters, digits and _ . : -"

/** True for a name or id that follows the rule. */
export const isSafe = (name: string): boolean => safe.test(name)
