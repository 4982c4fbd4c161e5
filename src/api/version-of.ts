// A short fingerprint of an instance view: clients long-poll until it changes.
import { canonicalJson, fnv1a } from '../records/canonical.js';
import type { InstanceView } from './views.js';

export function versionOf(view: InstanceView | unknown[]): string {
  return fnv1a(canonicalJson(view)).toString(16);
}
