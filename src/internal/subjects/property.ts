/**
 * How a property lives in a subject's hash (KRules' format): field `p<name>` for a default property, `e<name>` for an
 * extended one, the value as JSON text; and the codecs that turn values into that text and back, plain JSON or a
 * `Schema`.
 *
 * @internal
 */
import { Exit, Option, Result, Schema } from "effect"
import { issueOf } from "../issue.js"
import { fail } from "./error.js"
import { type SubjectStorageError } from "../../SubjectStorageError.js"
import * as Reasons from "../../SubjectStorageError.js"
import { remembered } from "../memo.js"

/** Turns values of one property into stored JSON text and back. */
export interface Codec<A> {
  readonly encode: (value: A) => Result.Result<string, string>
  readonly decode: (json: string) => Result.Result<A, string>
}

/** A property as the storage addresses it: its name, whether it is extended, its hash field and its codec. */
export interface PropertyRef<A> {
  readonly name: string
  readonly extended: boolean
  readonly field: string
  readonly codec: Codec<A>
}

/** The hash field of a property. */
export const fieldOf = (name: string, extended: boolean): string => `${extended ? "e" : "p"}${name}`

/** The property a hash field holds, or undefined for a field of another kind. */
export const parseField = (field: string): { readonly name: string; readonly extended: boolean } | undefined =>
  field.startsWith("p")
    ? { name: field.slice(1), extended: false }
    : field.startsWith("e")
      ? { name: field.slice(1), extended: true }
      : undefined

/** Any JSON value, as `JSON.stringify` and `JSON.parse` see it. */
export const json: Codec<unknown> = {
  encode: (value) => {
    try {
      const text = JSON.stringify(value)
      return text === undefined ? Result.fail("it has no JSON form") : Result.succeed(text)
    } catch (error) {
      return Result.fail(String(error))
    }
  },
  decode: (text) => {
    try {
      return Result.succeed(JSON.parse(text) as unknown)
    } catch {
      return Result.fail("the stored value is not JSON")
    }
  }
}

/** Values of `schema`, stored as the JSON of its canonical JSON form (`Schema.toCodecJson`: a `Date` as ISO text…). */
export const fromSchema = <A>(schema: Schema.Codec<A, unknown>): Codec<A> => {
  const codec = Schema.toCodecJson(schema)
  const encode = Schema.encodeExit(codec)
  const decode = Schema.decodeUnknownExit(codec)
  return {
    encode: (value) => {
      const encoded = encode(value)
      return Exit.isSuccess(encoded)
        ? json.encode(encoded.value)
        : Result.fail(`it does not match the schema: ${issueOf(encoded.cause)}`)
    },
    decode: (text) =>
      Result.flatMap(json.decode(text), (raw) => {
        const decoded = decode(raw)
        return Exit.isSuccess(decoded)
          ? Result.succeed(decoded.value)
          : Result.fail(`the stored value does not match the schema: ${issueOf(decoded.cause)}`)
      })
  }
}

/** Untyped property references of one kind, made once per name. */
const untypedRefs = (extended: boolean) =>
  remembered((name): PropertyRef<unknown> => ({ name, extended, field: fieldOf(name, extended), codec: json }))
const plainRef = untypedRefs(false)
const extendedRef = untypedRefs(true)

/** A plain-JSON property reference (the same object for the same name). */
export const untyped = (name: string, extended = false): PropertyRef<unknown> =>
  extended ? extendedRef(name) : plainRef(name)

/** The stored JSON of a property of `subject` as its value, or a `Decode` error naming them. */
export const decodeStored = <A>(
  subject: string,
  ref: PropertyRef<A>,
  json: string
): Result.Result<A, SubjectStorageError> =>
  Result.mapError(ref.codec.decode(json), (why) =>
    fail(Reasons.Decode, `property ${ref.name} of subject ${subject}: ${why}`, subject, ref.name)
  )

/** {@link decodeStored} of a value that may be absent (null or undefined: none). */
export const decodeStoredOption = <A>(
  subject: string,
  ref: PropertyRef<A>,
  json: string | null | undefined
): Result.Result<Option.Option<A>, SubjectStorageError> =>
  json == null ? Result.succeed(Option.none<A>()) : Result.map(decodeStored(subject, ref, json), Option.some)

/** A value of a property of `subject` as stored JSON, or an `InvalidValue` error naming them. */
export const encodeStored = <A>(
  subject: string,
  ref: PropertyRef<A>,
  value: A
): Result.Result<string, SubjectStorageError> =>
  Result.mapError(ref.codec.encode(value), (why) =>
    fail(Reasons.InvalidValue, `property ${ref.name} of subject ${subject} cannot be stored: ${why}`, subject, ref.name)
  )
