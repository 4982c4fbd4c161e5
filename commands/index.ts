// Every chorus command, listed explicitly: oclif loads this map instead of scanning
// folders, which keeps start-up fast and lets the single executable bundle them.
import Status from './status.js';

export const COMMANDS = {
  status: Status,
};
