// A short fingerprint of an instance view: clients long-poll until it changes.
import { canonicalJson } from '../records/canonical.js';
import type { InstanceView } from './views.js';

export function versionOf(view: InstanceView): string {
  let h = 2166136261;
  const text = canonicalJson(view);
  for (let i = 0; i < text.length; i++) h = Math.imul(h ^ text.charCodeAt(i), 16777619);
  return (h >>> 0).toString(16);
}
