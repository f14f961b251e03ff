/**
 * Who may read a run: tokens issued for a run of a registered stream (signed and expiring when the layer has secrets)
 * and checked against the streams registered in this layer.
 *
 * @internal
 */
import { Duration, Effect } from "effect"
import * as Reasons from "../../ResumableStreamError.js"
import { fail } from "./error.js"
import type { Settings } from "./settings.js"
import * as Token from "./token.js"

/** Issues and checks the tokens of a layer. */
export interface Access {
  /** A token for run `runId` of stream `name`. */
  readonly tokenFor: (name: string, runId: string) => string
  /** The run a token names: `Expired`, `InvalidToken`, or `NotFound` (a stream not registered here). */
  readonly verify: (token: string) => Effect.Effect<Token.TokenPayload, Reasons.ResumableStreamError>
  /** `verify`, for a token that must belong to stream `name` (registered here: `NotFound` otherwise). */
  readonly verifyFor: (token: string, name: string) => Effect.Effect<Token.TokenPayload, Reasons.ResumableStreamError>
}

/** The tokens of the layer `settings` describe. */
export const make = (settings: Settings): Access => {
  const { secrets, definitions } = settings
  const verify: Access["verify"] = (token) => {
    const checked = Token.verify(token, secrets, Date.now())
    if ("problem" in checked) {
      return checked.problem === "Expired"
        ? Effect.fail(fail(Reasons.Expired, "the token expired"))
        : Effect.fail(fail(Reasons.InvalidToken, `invalid token (${checked.problem})`))
    }
    if (!definitions.has(checked.payload.name)) {
      return Effect.fail(
        fail(Reasons.NotFound, `no stream named "${checked.payload.name}" here`, checked.payload.runId)
      )
    }
    return Effect.succeed(checked.payload)
  }
  return {
    tokenFor: (name, runId) => {
      const now = Date.now()
      return Token.issue(
        {
          name,
          runId,
          issuedAt: now,
          expiresAt: secrets.length === 0 ? undefined : now + Duration.toMillis(settings.tokenTtl)
        },
        secrets
      )
    },
    verify,
    verifyFor: (token, name) => {
      if (!definitions.has(name)) return Effect.fail(fail(Reasons.NotFound, `no stream named "${name}" here`))
      return Effect.flatMap(verify(token), (payload) =>
        payload.name === name
          ? Effect.succeed(payload)
          : Effect.fail(
              fail(Reasons.InvalidToken, `the token is for a stream "${payload.name}", not "${name}"`, payload.runId)
            )
      )
    }
  }
}
