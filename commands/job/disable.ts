import { jobSwitchCommand } from '../../src/cli/actions.js';

export default jobSwitchCommand('disable', 'Disable a job: its schedule stops firing; job run still works.');
