// Text from the cluster (job output, node names and tags, messages) made inert before the
// CLI prints it for people: a job on one host must not retitle, clear or plant links in the
// terminal of whoever reads its output. --json prints the raw text; this is for humans only.

/**
 * What is escaped, and how:
 * - C0 controls but newline and tab, and DEL: `\x1b`, `\x07`, `\x00`, `\x7f`;
 * - a carriage return not directly followed by a newline: `\r` (alone it moves back to the
 *   start of the line, so what comes after overwrites, and hides, what came before);
 * - C1 controls (U+0080-U+009F; U+009B is a one-character CSI): `\u009b`;
 * - bidi embeddings, overrides and isolates (U+202A-U+202E, U+2066-U+2069), which make the
 *   text shown differ from the text written ("Trojan Source"): `\u202e`.
 * Only these are matched, so everything an escape produces is printable ASCII and escaping
 * twice changes nothing. A backslash is not escaped: a job that prints the four characters
 * `\x1b` looks like one that printed ESC, which keeps output readable; --json tells them apart.
 */
// eslint-disable-next-line no-control-regex -- matching control characters is the point
const UNSAFE = /[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]|\r(?!\n)/g;

const hex = (code: number, digits: number) => code.toString(16).padStart(digits, '0');

function escapeOne(char: string): string {
  if (char === '\r') return '\\r';
  const code = char.charCodeAt(0);
  return code < 0x80 ? `\\x${hex(code, 2)}` : `\\u${hex(code, 4)}`;
}

/** `text` with every character a terminal would act on (other than newline and tab) written out as an escape. */
export function escapeControl(text: string): string {
  return text.replace(UNSAFE, escapeOne);
}
