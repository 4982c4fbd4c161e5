// A node is built from all of its parts or not at all: a missing part is named at construction.
import { describe, expect, it } from 'vitest';
import { checkComponents, type NodeComponents } from './node.js';

describe('checkComponents', () => {
  it('names every missing component', () => {
    const some = { clock: {}, transport: {}, random: Math.random } as unknown as Partial<NodeComponents>;
    expect(() => checkComponents(some)).toThrow(
      'a chorus node cannot be built without its "config", "store", "journal", "outputs", "executor", "hlc", "keys", "self", "log", "newInstanceId", "fatal", "webhooks" components',
    );
    expect(() => checkComponents({ ...some, executor: undefined })).toThrow(/"executor"/);
  });
});
