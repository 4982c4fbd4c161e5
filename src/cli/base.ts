// The base of every client command: finds the daemon (--data-dir, or --api/--token),
// prints one JSON document with --json, and turns errors into the contract's exit codes.
// Text for people passes escapeControl once more on its way out: the formatters escape
// what came from the cluster already (that changes nothing twice), and a message or a
// field they do not know of cannot reach the terminal raw either.
import { Args, Command, Flags, Errors, type Interfaces } from '@oclif/core';
import { ChorusClient, ClientError, EXIT, resolveEndpoint } from '../api/client.js';
import type { InstanceView } from '../api/views.js';
import { isRequestId, newRequestId } from '../records/ids.js';
import { escapeControl } from '../output/escape.js';
import { formatInstance, formatSkipped } from './format.js';
import { checkJobName } from './job-spec.js';
import { exitCodeFor, reportOutputTail, waitForInstance } from './wait.js';

export const endpointFlags = {
  'data-dir': Flags.string({
    description: 'data directory of the local daemon [default: $CHORUS_DATA_DIR or ~/.chorus]',
    env: 'CHORUS_DATA_DIR',
    helpGroup: 'DAEMON',
  }),
  api: Flags.string({ description: 'API URL of a daemon, instead of --data-dir', env: 'CHORUS_API', helpGroup: 'DAEMON' }),
  token: Flags.string({ description: 'API token, with --api', env: 'CHORUS_TOKEN', helpGroup: 'DAEMON' }),
  ca: Flags.string({ description: 'CA certificate (PEM) to trust for an https:// --api', env: 'CHORUS_CACERT', helpGroup: 'DAEMON' }),
};

/** `--idempotency-key`: the same key on a retried write makes it happen once (runs: one instance, however often or wherever it is asked). */
export const idempotencyFlag = {
  'idempotency-key': Flags.string({
    description: 'an id for this request (8-128 letters, digits or ._:-): the same key again, after a lost answer or a timeout, creates nothing new [default: a new random one]',
  }),
};

/** The request id a write sends: the --idempotency-key given, or a new one (the CLI's own retries reuse it). */
export function requestIdOf(flags: { 'idempotency-key'?: string }): string {
  const key = flags['idempotency-key'];
  if (key === undefined) return newRequestId();
  if (!isRequestId(key)) throw new ClientError(`--idempotency-key ${JSON.stringify(key)}: use 8 to 128 letters, digits or ._:- (for example a CI job id)`, EXIT.badInput, 'bad-input');
  return key;
}

/** The argument of a command about one job (`job show NAME`). */
export const jobNameArg = { name: Args.string({ required: true }) };
/** The argument of a command about one instance (`instance show ID`). */
export const instanceIdArg = { id: Args.string({ required: true }) };

/** The API path of a job, or of what is under it; the name is checked first (a bad one is bad input). */
export function jobPath(name: string, under = ''): string {
  return `/v1/jobs/${encodeURIComponent(checkJobName(name))}${under}`;
}

/** The API path of an instance, or of what is under it. */
export function instancePath(id: string, under = ''): string {
  return `/v1/instances/${encodeURIComponent(id)}${under}`;
}

type EndpointFlagValues = { 'data-dir'?: string; api?: string; token?: string; ca?: string };

export const jsonFlag = {
  json: Flags.boolean({ description: 'print exactly one JSON document on stdout' }),
};

/** What oclif's parser gives per flag or argument (its FlagOutput and ArgOutput, which it does not export). */
type ParsedRecord = Record<string, unknown>;

export abstract class ClientCommand extends Command {
  static override baseFlags = { ...endpointFlags, ...jsonFlag };

  /** --json was given: set once by parse(), which every command calls first. */
  protected jsonMode = false;
  private clientInstance: ChorusClient | null = null;

  protected override async parse<F extends ParsedRecord, B extends ParsedRecord, A extends ParsedRecord>(
    options?: Interfaces.Input<F, B, A>,
    argv?: string[],
  ): Promise<Interfaces.ParserOutput<F, B, A>> {
    const parsed = await super.parse(options, argv);
    this.jsonMode = (parsed.flags as { json?: unknown }).json === true;
    return parsed;
  }

  protected async client(flags: EndpointFlagValues): Promise<ChorusClient> {
    if (!this.clientInstance) {
      this.clientInstance = new ChorusClient(await resolveEndpoint({ dataDir: flags['data-dir'], api: flags.api, token: flags.token, ca: flags.ca }));
    }
    return this.clientInstance;
  }

  /**
   * Finds the daemon, asks it (`ask` gets the client once it is found) and prints the answer:
   * as JSON with --json, otherwise as `human(answer)`.
   */
  protected async printAnswer<T>(flags: EndpointFlagValues, ask: (client: ChorusClient) => Promise<T>, human: (answer: T) => string): Promise<void> {
    const answer = await ask(await this.client(flags));
    this.output(answer, () => human(answer));
  }

  /** Prints data: as JSON with --json, otherwise as the given human text. */
  protected output(data: unknown, human: () => string): void {
    if (this.jsonMode) process.stdout.write(`${JSON.stringify(data, null, 2)}\n`);
    else process.stdout.write(`${escapeControl(human())}\n`);
  }

  protected progress(line: string): void {
    process.stderr.write(`${escapeControl(line)}\n`);
  }

  followOutput = (data: unknown, human: () => string): void => this.output(data, human);
  followProgress = (line: string): void => this.progress(line);

  /** Ends the command with an exit code after output was printed. */
  protected finish(exitCode: number): void {
    if (exitCode !== 0) this.exit(exitCode);
  }

  protected override async catch(err: Error & { exitCode?: number; oclif?: { exit?: number } }): Promise<unknown> {
    if (err instanceof Errors.ExitError) throw err;
    if (err instanceof ClientError) return this.fail(err.message, err.exitCode, err.code);
    // oclif's own parse errors (unknown flag, missing argument, bad option value) are bad input.
    if (err.oclif?.exit !== undefined && err.oclif.exit !== 0) return this.fail(err.message, EXIT.badInput, 'bad-input');
    return this.fail(err.stack ?? err.message, EXIT.failed, 'internal');
  }

  private fail(message: string, exitCode: number, code: string): never {
    if (this.jsonMode || this.argv.includes('--json')) process.stdout.write(`${JSON.stringify({ error: code, message, exitCode })}\n`);
    process.stderr.write(`Error: ${escapeControl(message)}\n`);
    this.exit(exitCode);
  }
}

/** Prints a started instance; with `wait`, follows it to its end and exits with its outcome. */
export async function followInstance(
  command: ClientCommand & { followOutput: (data: unknown, human: () => string) => void; followProgress: (line: string) => void },
  client: ChorusClient,
  view: InstanceView,
  options: { wait: boolean; timeoutMs: number | null; json: boolean },
): Promise<number> {
  if (!options.wait) {
    command.followOutput(view, () => `started instance ${view.id} of ${view.job} on ${view.targets.length} node(s)\n${formatInstance(view)}`);
    return view.status === 'failed' ? EXIT.failed : EXIT.ok;
  }
  const showProgress = !options.json || process.stderr.isTTY;
  const skipped = formatSkipped(view);
  if (showProgress) command.followProgress(`instance ${view.id} of ${view.job} on ${view.targets.length} node(s)${skipped ? `; skipped ${skipped}` : ''}`);
  const result = await waitForInstance(client, view, options.timeoutMs, showProgress ? (l) => command.followProgress(l) : null);
  command.followOutput(result.view, () => formatInstance(result.view));
  if (result.timedOut) command.followProgress(`timed out waiting; instance ${view.id} is still ${result.view.status}`);
  // People see how it ended on each node; --json keeps stderr to the progress lines.
  else if (!options.json) await reportOutputTail(client, result.view, (l) => command.followProgress(l));
  return exitCodeFor(result);
}
