import { Flags } from '@oclif/core';
import { ClientCommand } from '../../src/cli/base.js';
import { badInput } from '../../src/cli/job-spec.js';

export default class JobApply extends ClientCommand {
  static override description =
    'Create and update jobs from files (TOML or JSON, see schema/job.schema.json): prints, per job, created, updated (with the fields that changed) or unchanged.';
  static override examples = [
    '<%= config.bin %> job apply -f jobs.toml',
    '<%= config.bin %> job apply -f jobs/ --prune --dry-run',
    '<%= config.bin %> job export > jobs.toml && <%= config.bin %> job apply -f jobs.toml',
  ];
  static override flags = {
    file: Flags.string({ char: 'f', required: true, multiple: true, description: 'a job file, or a directory: every .toml and .json file in it (repeatable)' }),
    prune: Flags.boolean({ description: 'also remove the jobs that no file names' }),
    'dry-run': Flags.boolean({ description: 'only print what would change' }),
  };

  async run(): Promise<void> {
    const { flags } = await this.parse(JobApply);
    // Loaded here, not at the top: every command's start-up pays for top-level imports (ajv, smol-toml).
    const { JobFileError, jobFilesAt, readJobFiles } = await import('../../src/cli/job-file.js');
    const { applyJobs, formatApply } = await import('../../src/cli/job-apply.js');
    let desired;
    try {
      const files = (await Promise.all(flags.file.map((f) => jobFilesAt(f)))).flat();
      desired = await readJobFiles(files);
    } catch (err) {
      if (err instanceof JobFileError) throw badInput(err.message);
      throw err;
    }
    const dryRun = flags['dry-run'];
    const { results, exitCode } = await applyJobs(await this.client(flags), desired, { prune: flags.prune, dryRun });
    this.output({ dryRun, jobs: results }, () => formatApply(results, dryRun));
    if (exitCode !== 0) this.finish(exitCode);
  }
}
