import { spawn } from 'node:child_process';
import { Flags } from '@oclif/core';
import { ClientCommand } from '../src/cli/base.js';

interface LoginCode {
  code: string;
  expiresAt: string;
  path: string;
}

export default class Ui extends ClientCommand {
  static override description =
    'Print the URL of the dashboard every daemon serves at /ui, with a login code good for one use within a minute (it gives the browser a session with the role of your token; the token itself never goes in a URL).';
  static override examples = ['<%= config.bin %> ui', '<%= config.bin %> ui --open', '<%= config.bin %> ui --api https://node-1:7410 --token $READ_TOKEN --ca ca.pem'];
  static override flags = { open: Flags.boolean({ description: 'also open it in the default browser (xdg-open or open)' }) };

  async run(): Promise<void> {
    const { flags } = await this.parse(Ui);
    const client = await this.client(flags);
    const login = await client.request<LoginCode>('POST', '/v1/ui/codes', {});
    const url = `${client.endpoint.api}${login.path}`;
    let opened: string | null = null;
    if (flags.open) opened = await openInBrowser(url);
    this.output({ url, expiresAt: login.expiresAt, opened: flags.open && opened === null }, () =>
      [url, `(one use, until ${login.expiresAt})`, ...(opened !== null ? [`could not open a browser (${opened}): open the URL yourself`] : flags.open ? ['opened in the browser'] : [])].join('\n'),
    );
  }
}

/** Opens `url` with the desktop's opener; null when it started, else why not. */
function openInBrowser(url: string): Promise<string | null> {
  const opener = process.platform === 'darwin' ? 'open' : 'xdg-open';
  return new Promise((resolve) => {
    const child = spawn(opener, [url], { stdio: 'ignore', detached: true });
    child.once('error', (err) => resolve(`${opener}: ${(err as NodeJS.ErrnoException).code ?? err.message}`));
    child.once('spawn', () => {
      child.unref();
      resolve(null);
    });
  });
}
