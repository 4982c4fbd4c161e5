// The one wait-with-a-deadline of the tests and the benchmark lives in src/testing/wait.ts.
export * from '../../src/testing/wait.js';
