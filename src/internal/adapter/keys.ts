/**
 * The layout of a live-state stream in Redis. For stream `S` and group `G` (G percent-encoded as `E`, so any group
 * name is safe and no two groups share a key or a channel):
 *
 * - `{prefix}{S:E}:items`: one hash per group, item id → item JSON (a group is read with one HGETALL, never a SCAN);
 * - `{prefix}{S:E}:log`: the group's change log, a stream whose entry ids are `0-<version>` (MAXLEN ~);
 * - `{prefix}{S:E}:meta`: the group's version counter and epoch;
 * - `{prefix}{S:E}:expiry`: the deadlines of the items that expire (item id → milliseconds since the epoch);
 * - `{prefix}{S}:groups`: the set of the stream's groups (in its own slot: kept next to the writes, not with them);
 * - `{prefix}expiring`: the groups of every stream whose items expire (`S:G` → a hint of the earliest deadline; see
 *   `internal/expiry.ts`);
 * - channel `{prefix}{S:E}:events`: every change of the group, as published.
 *
 * The group keys share the hash tag `{S:E}`, so a write, its log entry and its event are one atomic script on a
 * Cluster too.
 *
 * @internal
 */

/** The keys of one group. */
export interface GroupKeys {
  readonly items: string
  readonly log: string
  readonly meta: string
  readonly expiry: string
  readonly channel: string
}

/** The keys of group `groupId` of stream `stream`. */
export const groupKeys = (prefix: string, stream: string, groupId: string): GroupKeys => {
  const tag = `${prefix}{${stream}:${encodeURIComponent(groupId)}}`
  return {
    items: `${tag}:items`,
    log: `${tag}:log`,
    meta: `${tag}:meta`,
    expiry: `${tag}:expiry`,
    channel: `${tag}:events`
  }
}

/** The key of the set of a stream's groups. */
export const groupsKey = (prefix: string, stream: string): string => `${prefix}{${stream}}:groups`

/** The index of groups whose items expire, for every stream under `prefix`. */
export const expiringKey = (prefix: string): string => `${prefix}expiring`

/** A group's member in the index of expiring groups: `S:G` (a stream name has no `:`). */
export const expiringMember = (stream: string, groupId: string): string => `${stream}:${groupId}`

/** The stream and group of a member of the index of expiring groups. */
export const parseExpiringMember = (member: string): { readonly stream: string; readonly groupId: string } => {
  const at = member.indexOf(":")
  return { stream: member.slice(0, at), groupId: member.slice(at + 1) }
}
