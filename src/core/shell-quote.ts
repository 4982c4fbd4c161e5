// Quoting for the POSIX shell that runs a job's command: how `chorus run -- CMD ARG...`
// joins its words into one shell line, and how tests write a command line.

/** `text` single-quoted: the shell reads it back as exactly this one word, whatever it holds. */
export function singleQuote(text: string): string {
  return `'${text.replace(/'/g, `'\\''`)}'`;
}

/** One word as the shell needs it to pass it through unchanged: bare when that is safe, else single-quoted. */
export function shellWord(word: string): string {
  return /^[A-Za-z0-9_\-./:=@%+,]+$/.test(word) ? word : singleQuote(word);
}
