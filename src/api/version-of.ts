// A short fingerprint of an instance view: clients long-poll until it changes. Free of the
// daemon's types: the dashboard computes it in the browser the same way.
import { canonicalJson, fnv1a } from '../records/canonical.js';

export function versionOf(view: unknown): string {
  return fnv1a(canonicalJson(view)).toString(16);
}
