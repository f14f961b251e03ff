/**
 * The demo's inspector: every capability under the desk's prefixes, with the actions on, behind an access token made
 * at start (as Jupyter does): the URL the demo prints carries it, and the page keeps it in a cookie. Anyone else who
 * reaches the port gets 403; the guard refuses other hosts and cross-site pages.
 */
import { Redacted } from "effect"
import { randomBytes } from "node:crypto"
import * as Inspector from "../../src/Inspector.js"

/** The inspector's routes at `/inspector` for the keys under `prefix`, and the token that opens them. */
export const inspectorRoutes = (prefix: string) => {
  const token = randomBytes(24).toString("base64url")
  const routes = Inspector.routes({
    messaging: { keyPrefix: prefix },
    resumable: { keyPrefix: `${prefix}runs:` },
    adapter: { keyPrefix: `${prefix}live:` },
    subjects: { keyPrefix: prefix },
    actions: true,
    authorize: Inspector.withToken(Redacted.make(token)),
    pollInterval: "1 second"
  })
  return { routes, token }
}
