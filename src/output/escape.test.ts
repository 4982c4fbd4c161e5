// escapeControl: every character a terminal acts on is written out, newline and tab pass,
// and the escaped text is plain printable text that a second pass leaves alone.
import { describe, expect, it } from 'vitest';
import { escapeControl } from './escape.js';

const chars = (from: number, to: number) => Array.from({ length: to - from + 1 }, (_v, i) => String.fromCharCode(from + i));

describe('escapeControl', () => {
  it('leaves printable text, newlines and tabs as they are (Unicode included)', () => {
    const text = 'ok: 3 files\n\tdone – naïve café ✓ 日本語 😀 \\x1b ~\n';
    expect(escapeControl(text)).toBe(text);
    expect(escapeControl('')).toBe('');
  });

  it('writes C0 controls as \\xHH: ESC, BEL, NUL, backspace, form feed, vertical tab', () => {
    expect(escapeControl('\x1b]0;pwned\x07\x1b[2J')).toBe('\\x1b]0;pwned\\x07\\x1b[2J');
    expect(escapeControl('a\x00b\x08c\x0cd\x0be')).toBe('a\\x00b\\x08c\\x0cd\\x0be');
    for (const c of chars(0x00, 0x1f)) {
      if (c === '\n' || c === '\t' || c === '\r') continue;
      expect(escapeControl(c)).toBe(`\\x${c.charCodeAt(0).toString(16).padStart(2, '0')}`);
    }
  });

  it('writes DEL as \\x7f and C1 controls (U+0080-U+009F) as \\u00HH', () => {
    expect(escapeControl('x\x7fy')).toBe('x\\x7fy');
    expect(escapeControl('\u009b2J')).toBe('\\u009b2J');
    for (const c of chars(0x80, 0x9f)) expect(escapeControl(c)).toBe(`\\u00${c.charCodeAt(0).toString(16)}`);
    // The first printable characters after them pass.
    expect(escapeControl('\u00a0\u00a9')).toBe('\u00a0\u00a9');
  });

  it('escapes a carriage return unless it ends a line (\\r\\n): alone it lets the rest overwrite the line', () => {
    expect(escapeControl('all good\rrm -rf / done')).toBe('all good\\rrm -rf / done');
    expect(escapeControl('windows line\r\nnext\r\n')).toBe('windows line\r\nnext\r\n');
    expect(escapeControl('10%\r50%\r100%\r\n')).toBe('10%\\r50%\\r100%\r\n');
    expect(escapeControl('\r\r\n')).toBe('\\r\r\n');
    expect(escapeControl('ends in\r')).toBe('ends in\\r');
  });

  it('escapes the bidi embeddings, overrides and isolates, and only those', () => {
    for (const c of [...chars(0x202a, 0x202e), ...chars(0x2066, 0x2069)]) expect(escapeControl(c)).toBe(`\\u${c.charCodeAt(0).toString(16)}`);
    expect(escapeControl('access level: \u202euser\u2066 admin')).toBe('access level: \\u202euser\\u2066 admin');
    // Their neighbours are ordinary text.
    expect(escapeControl('\u2029\u202f\u2065\u206a')).toBe('\u2029\u202f\u2065\u206a');
  });

  it('an OSC 8 hyperlink shows as its text, link and all', () => {
    const link = '\x1b]8;;https://evil.example/\x1b\\click me\x1b]8;;\x1b\\';
    expect(escapeControl(link)).toBe('\\x1b]8;;https://evil.example/\\x1b\\click me\\x1b]8;;\\x1b\\');
  });

  it('gives printable ASCII for every escaped character, so a second pass changes nothing', () => {
    const every = [...chars(0x00, 0xa0), ...chars(0x2020, 0x2070)].join('');
    const once = escapeControl(every);
    expect(escapeControl(once)).toBe(once);
    // eslint-disable-next-line no-control-regex -- looking for what must not be left
    expect(once.replace(/[\n\t]|\r\n/g, '')).not.toMatch(/[\x00-\x1f\x7f-\x9f\u202a-\u202e\u2066-\u2069]/);
  });
});
