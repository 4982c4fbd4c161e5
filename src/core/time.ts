// Times on the wire (API, --json, a post step's stdin) are ISO 8601 strings.

export const iso = (ms: number | null | undefined): string | null => (ms == null ? null : new Date(ms).toISOString());
