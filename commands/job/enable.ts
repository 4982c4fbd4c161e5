import { jobSwitchCommand } from '../../src/cli/actions.js';

export default jobSwitchCommand('enable', 'Enable a job: its schedule fires again.');
