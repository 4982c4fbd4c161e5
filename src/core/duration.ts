// The one duration parser: "500ms", "30s", "5m", "1h30m", "2d". Strict on purpose:
// a bare number is refused, because "5" could mean seconds or milliseconds.

const UNIT_MS: Record<string, number> = { ms: 1, s: 1000, m: 60_000, h: 3_600_000, d: 86_400_000 };
const PART = /(\d+(?:\.\d+)?)(ms|s|m|h|d)/y;

export class DurationError extends Error {}

export function parseDuration(text: string): number {
  const input = text.trim();
  if (input === '') throw new DurationError('a duration cannot be empty; write it like 30s, 5m, 1h30m or 500ms');
  let totalMs = 0;
  PART.lastIndex = 0;
  while (PART.lastIndex < input.length) {
    const start = PART.lastIndex;
    const match = PART.exec(input);
    if (!match || match.index !== start) {
      throw new DurationError(`"${text}" is not a duration; write it like 30s, 5m, 1h30m or 500ms (units: ms, s, m, h, d)`);
    }
    totalMs += Number(match[1]) * (UNIT_MS[match[2] as string] as number);
  }
  if (!Number.isFinite(totalMs) || totalMs <= 0) throw new DurationError(`"${text}" must be longer than zero`);
  return Math.round(totalMs);
}

/** A duration written so that parseDuration gives back exactly `ms` (> 0): "1m", "90s", "1500ms". For files chorus prints and reads back. */
export function formatExactDuration(ms: number): string {
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000]] as const) {
    if (ms % size === 0) return `${ms / size}${unit}`;
  }
  return `${ms}ms`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${Math.round(ms)}ms`;
  if (ms < 60_000) return `${(ms / 1000).toFixed(ms < 10_000 ? 2 : 1)}s`;
  // Round once, to whole seconds, so 119.5 s reads 2m and not 1m60s.
  const totalSeconds = Math.round(ms / 1000);
  const minutes = Math.floor(totalSeconds / 60);
  const seconds = totalSeconds % 60;
  if (minutes < 60) return `${minutes}m${seconds ? `${seconds}s` : ''}`;
  const hours = Math.floor(minutes / 60);
  return `${hours}h${minutes % 60 ? `${minutes % 60}m` : ''}`;
}

/** A duration in the units `parseDuration` reads back: 25d, 1d2h, 1h30m, 1m30s, 1s500ms. */
export function formatDurationUnits(ms: number): string {
  if (!Number.isFinite(ms) || ms <= 0) return `${ms}ms`;
  let rest = Math.round(ms);
  const parts: string[] = [];
  for (const [unit, size] of [['d', 86_400_000], ['h', 3_600_000], ['m', 60_000], ['s', 1000], ['ms', 1]] as const) {
    const n = Math.floor(rest / size);
    if (n > 0) parts.push(`${n}${unit}`);
    rest -= n * size;
  }
  return parts.join('');
}
