/**
 * A subject's hash as `HGETALL` lists it, as a record.
 *
 * @internal
 */

/** A hash's fields as HGETALL lists them (`[field, value, …]`), as a record of own properties. */
export const recordOf = (flat: ReadonlyArray<string>): Record<string, string> => {
  const record: Record<string, string> = {}
  for (let i = 0; i + 1 < flat.length; i += 2) {
    const field = flat[i] as string
    // a field named `__proto__` is a property like any other, not the prototype
    if (field === "__proto__") Object.defineProperty(record, field, { value: flat[i + 1], enumerable: true })
    else record[field] = flat[i + 1] as string
  }
  return record
}
