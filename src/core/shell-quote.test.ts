// A quoted word must come back from a real shell as exactly the word it was.
import { execFileSync } from 'node:child_process';
import { describe, expect, it } from 'vitest';
import { shellWord, singleQuote } from './shell-quote.js';

const WORDS = ['plain', 'a b', "it's", "''", '', '$HOME', '`id`', '"x"', 'a\\b', 'tab\there', 'new\nline', '*', '-n', '!x', 'ünï', '--flag=value'];

/** What `sh` makes of a line: its words, one per line (printf repeats its format). */
const wordsOf = (line: string): string[] => {
  const out = execFileSync('sh', ['-c', `printf '%s\\0' ${line}`], { encoding: 'utf8' });
  return out.split('\0').slice(0, -1);
};

describe('shellWord', () => {
  it('leaves a safe word bare', () => {
    expect(shellWord('uname')).toBe('uname');
    expect(shellWord('/usr/bin/env')).toBe('/usr/bin/env');
    expect(shellWord('key=a,b:c@d%e+f')).toBe('key=a,b:c@d%e+f');
  });

  it('quotes anything the shell would read otherwise', () => {
    expect(shellWord('a b')).toBe(`'a b'`);
    expect(shellWord("it's")).toBe(`'it'\\''s'`);
    expect(shellWord('')).toBe(`''`);
  });

  it('gives every word back unchanged through sh, one word each', () => {
    expect(wordsOf(WORDS.map(shellWord).join(' '))).toEqual(WORDS);
  });
});

describe('singleQuote', () => {
  it('always quotes, and sh reads it back as the same word', () => {
    expect(singleQuote('plain')).toBe(`'plain'`);
    expect(wordsOf(WORDS.map(singleQuote).join(' '))).toEqual(WORDS);
  });
});
