// Waiting in tests for a condition in real time, with a deadline: never a fixed sleep.

/** Polls `condition` until it holds; fails naming `what` once `timeoutMs` has passed. */
export async function waitFor(condition: () => boolean | Promise<boolean>, what: string, timeoutMs = 10_000, pollMs = 20): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  while (!(await condition())) {
    if (Date.now() > deadline) throw new Error(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, pollMs));
  }
}
