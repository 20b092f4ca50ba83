import { ITeamQuota } from '../api/hubTypes';
import { holderLines, quotaText } from '../hub/plugin';

const team: ITeamQuota = {
  team: 'vision',
  gpu_quota: 4,
  gpus: 3,
  max_gpus_per_user: 2,
  servers: 2,
  max_servers: null,
  holders: [
    { user: 'alice', kind: 'notebook', name: '', gpus: 2, since: 0 },
    { user: 'bob', kind: 'job', name: 'train-ddp', gpus: 1, since: 0 },
    { user: 'bob', kind: 'notebook', name: 'big', gpus: 1, since: 0 }
  ]
};

describe('team quota status', () => {
  it('says the team and its GPUs in use of the quota', () => {
    expect(quotaText(team)).toBe('vision · GPUs 3/4');
  });

  it('lists who holds the GPUs: servers and jobs', () => {
    expect(holderLines(team)).toEqual([
      'alice: notebook, 2 GPUs',
      'bob: job train-ddp, 1 GPU',
      'bob: notebook big, 1 GPU'
    ]);
    expect(holderLines({ ...team, gpus: 0, holders: [] })).toEqual([
      'No GPUs in use'
    ]);
  });
});
