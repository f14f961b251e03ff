/**
 * Redis stream entry ids as offsets from outside (a resume's `after`, an inspector's cursor): checked before they
 * reach Redis.
 *
 * @internal
 */

const maxIdPart = 2n ** 64n - 1n

/** True for a well-formed stream entry id: two parts of at most 2^64 - 1, as Redis stores them. */
export const isEntryId = (id: string): boolean => {
  const match = /^(\d{1,20})-(\d{1,20})$/.exec(id)
  return match !== null && BigInt(match[1] as string) <= maxIdPart && BigInt(match[2] as string) <= maxIdPart
}

/** True for the smallest entry id, which means "from the start" as an offset. */
export const isStartId = (id: string): boolean => /^0+-0+$/.test(id)
