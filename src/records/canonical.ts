// A canonical JSON form of a record (sorted keys): the final tie-break of every merge,
// so two different records with equal stamps still merge the same way everywhere.

export function canonicalJson(value: unknown): string {
  return JSON.stringify(sortKeys(value));
}

function sortKeys(value: unknown): unknown {
  if (Array.isArray(value)) return value.map(sortKeys);
  if (value !== null && typeof value === 'object') {
    const out: Record<string, unknown> = {};
    for (const key of Object.keys(value).sort()) out[key] = sortKeys((value as Record<string, unknown>)[key]);
    return out;
  }
  return value;
}

/**
 * A record's canonical JSON without its signature: what its writer signs, and with the
 * signature what tells two versions apart. Records are never changed once made (a new
 * version is a new object; only `sig` is set, at commit), so it is computed once per object.
 */
const bodies = new WeakMap<object, string>();
export function recordBody(record: { sig: string }): string {
  let body = bodies.get(record);
  if (body === undefined) {
    const { sig: _sig, ...unsigned } = record;
    bodies.set(record, (body = canonicalJson(unsigned)));
  }
  return body;
}

/** 32-bit FNV-1a of a string: a cheap, stable fingerprint (not for security). */
export function fnv1a(text: string): number {
  let h = 2166136261;
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return h >>> 0;
}
