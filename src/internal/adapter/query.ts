/**
 * Queries over a group's items, evaluated in this process on the decoded items (one HGETALL per query; Redis is never
 * blocked by a scan of JSON): `where` (every condition must hold), `orderBy`/`orderDirection`, then `offset` and
 * `limit`.
 *
 * @internal
 */
import type { Query } from "../../StreamAdapter.js"

const operators = new Set(["eq", "ne", "gt", "gte", "lt", "lte", "in", "contains"])

/** Comparable form of a value: Dates by time, everything else as it is. */
const comparable = (value: unknown): unknown => (value instanceof Date ? value.getTime() : value)

const equal = (a: unknown, b: unknown) => comparable(a) === comparable(b)

/** Orders two present values (numbers, strings, Dates); -1, 0 or 1. */
const compare = (a: unknown, b: unknown): number => {
  const x = comparable(a) as number | string
  const y = comparable(b) as number | string
  return x === y ? 0 : x < y ? -1 : 1
}

const isOperatorObject = (condition: unknown): condition is Record<string, unknown> =>
  typeof condition === "object" &&
  condition !== null &&
  !(condition instanceof Date) &&
  !Array.isArray(condition) &&
  Object.keys(condition).length > 0 &&
  Object.keys(condition).every((key) => operators.has(key))

/** Whether `value` passes one operator. */
const passes = (operator: string, value: unknown, operand: unknown): boolean => {
  const present = value !== undefined && value !== null
  switch (operator) {
    case "eq":
      return equal(value, operand)
    case "ne":
      return !equal(value, operand)
    case "gt":
      return present && compare(value, operand) > 0
    case "gte":
      return present && compare(value, operand) >= 0
    case "lt":
      return present && compare(value, operand) < 0
    case "lte":
      return present && compare(value, operand) <= 0
    case "in":
      return Array.isArray(operand) && operand.some((candidate) => equal(value, candidate))
    default:
      // contains
      return typeof value === "string"
        ? typeof operand === "string" && value.includes(operand)
        : Array.isArray(value) && value.some((element) => equal(element, operand))
  }
}

const holds = (value: unknown, condition: unknown): boolean =>
  isOperatorObject(condition)
    ? Object.entries(condition).every(
        ([operator, operand]) => operand === undefined || passes(operator, value, operand)
      )
    : equal(value, condition)

/** Why a query is invalid, or undefined when it is fine. */
export const problemOf = (query: Query<unknown>): string | undefined => {
  for (const [field, condition] of Object.entries(query.where ?? {})) {
    const isPlainObject =
      typeof condition === "object" && condition !== null && !(condition instanceof Date) && !Array.isArray(condition)
    if (isPlainObject && !isOperatorObject(condition)) {
      return `the condition on ${field} has an unknown operator (known: ${Array.from(operators).join(", ")})`
    }
  }
  for (const [name, value] of [
    ["limit", query.limit],
    ["offset", query.offset]
  ] as const) {
    if (value !== undefined && (!Number.isInteger(value) || value < 0)) {
      return `${name} must be a non-negative integer, not ${value}`
    }
  }
  return undefined
}

/** Applies a (valid) query to items. */
export const run = <A>(items: ReadonlyArray<{ readonly id: string; readonly data: A }>, query: Query<A>) => {
  const where = Object.entries(query.where ?? {}) as Array<[string, unknown]>
  let result =
    where.length === 0
      ? [...items]
      : items.filter((item) =>
          where.every(([field, condition]) => holds((item.data as Record<string, unknown>)[field], condition))
        )
  if (query.orderBy !== undefined) {
    const field = query.orderBy
    const direction = query.orderDirection === "desc" ? -1 : 1
    const valueOf = (item: { readonly data: A }) => (item.data as Record<string, unknown>)[field]
    const missing = (value: unknown) => value === undefined || value === null
    // items without the field come last, whichever the direction
    result = result.sort((a, b) => {
      const x = valueOf(a)
      const y = valueOf(b)
      if (missing(x) || missing(y)) return Number(missing(x)) - Number(missing(y))
      return direction * compare(x, y)
    })
  }
  const offset = query.offset ?? 0
  return result.slice(offset, query.limit === undefined ? undefined : offset + query.limit)
}
