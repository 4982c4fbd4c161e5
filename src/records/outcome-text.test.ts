// The one renderer of how an attempt ended: every reason reads the same wherever it is shown.
import { describe, expect, it } from 'vitest';
import { outcomeText, reasonText } from './outcome-text.js';
import { FAILURE_REASONS } from './types.js';

describe('outcomeText', () => {
  it.each([
    [{ status: 'succeeded', reason: null, exitCode: 0 }, 'succeeded'],
    [{ status: 'running', reason: null, exitCode: null }, 'running'],
    [{ status: 'failed', reason: 'exit-code', exitCode: 3 }, 'failed (exit-code 3)'],
    [{ status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGKILL' }, 'failed (signal SIGKILL)'],
    [{ status: 'failed', reason: 'signal', exitCode: null, signal: 'SIGSEGV' }, 'failed (signal SIGSEGV)'],
    [{ status: 'failed', reason: 'node-lost', exitCode: null }, 'failed (node-lost)'],
    [{ status: 'cancelled', reason: 'aborted', exitCode: null }, 'cancelled (aborted)'],
    // A timeout ended by the executor's own SIGTERM: the code of a command that trapped it is not the reason.
    [{ status: 'failed', reason: 'timeout', exitCode: 143, signal: null }, 'failed (timeout)'],
    // A record written before `signal` existed: exit-code without a code.
    [{ status: 'failed', reason: 'exit-code', exitCode: null }, 'failed (exit-code)'],
  ] as const)('%o reads %s', (attempt, text) => {
    expect(outcomeText(attempt)).toBe(text);
  });

  it('names every failure reason, so none is shown as something else', () => {
    for (const reason of FAILURE_REASONS) expect(reasonText({ status: 'failed', reason, exitCode: null })).toBe(reason);
  });
});
