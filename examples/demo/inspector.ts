/**
 * The demo's inspector: every capability under the desk's prefixes, with the actions on. The demo serves it on
 * 127.0.0.1 only, so every request is allowed; a real deployment authorizes them (see `Inspector.Options`).
 */
import { Effect } from "effect"
import * as Inspector from "../../src/Inspector.js"

/** The inspector's routes at `/inspector`, for the keys under `prefix`. */
export const inspectorRoutes = (prefix: string) =>
  Inspector.routes({
    messaging: { keyPrefix: prefix },
    resumable: { keyPrefix: `${prefix}runs:` },
    adapter: { keyPrefix: `${prefix}live:` },
    subjects: { keyPrefix: prefix },
    actions: true,
    authorize: () => Effect.succeed(true),
    pollInterval: "1 second"
  })
