// How a time and a node id are shown to people, the same in the CLI (cli/format.ts) and the
// dashboard (ui/): pure functions with no imports, so the browser bundle can take them.

const SECOND_MS = 1000;
const MINUTE_MS = 60_000;
const HOUR_MS = 3_600_000;
const DAY_MS = 86_400_000;

/**
 * An ISO time relative to `nowMs`: "3s ago", "in 2m", "5h ago", "in 3d"; "now" within a
 * second. Each unit counts whole ones (90 s is "1m ago"); a time it cannot read stays as it is.
 */
export function relativeTime(iso: string, nowMs: number): string {
  const atMs = Date.parse(iso);
  if (Number.isNaN(atMs)) return iso;
  const diffMs = atMs - nowMs;
  const spanMs = Math.abs(diffMs);
  if (spanMs < SECOND_MS) return 'now';
  const span =
    spanMs < MINUTE_MS
      ? `${Math.floor(spanMs / SECOND_MS)}s`
      : spanMs < HOUR_MS
        ? `${Math.floor(spanMs / MINUTE_MS)}m`
        : spanMs < DAY_MS
          ? `${Math.floor(spanMs / HOUR_MS)}h`
          : `${Math.floor(spanMs / DAY_MS)}d`;
  return diffMs < 0 ? `${span} ago` : `in ${span}`;
}

/**
 * A node id as people see it: '…' and its last 12 characters (ids of 16 or fewer stay
 * whole). `--node` takes this form back, with or without the '…', so keep it exact.
 */
export function shortId(nodeId: string): string {
  return nodeId.length > 16 ? `…${nodeId.slice(-12)}` : nodeId;
}
