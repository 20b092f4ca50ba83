import { ISharesResponse } from '../api/hubTypes';
import { shareLabel, shareLink, sharingNote } from '../hub/share';

const state: ISharesResponse = {
  enabled: true,
  server: 'alice/',
  url: '/user/alice/',
  sharing: 'team',
  rule: 'only with members of your teams (vision)',
  shares: [{ user: 'bob', created_at: '2026-12-05T22:00:00Z' }],
  candidates: ['carol']
};

describe('share dialog', () => {
  it("links to the server's JupyterLab through the hub", () => {
    expect(shareLink('https://hub.example', state)).toBe(
      'https://hub.example/user/alice/lab'
    );
    expect(
      shareLink('https://hub.example', { ...state, url: '/user/a/gpu' })
    ).toBe('https://hub.example/user/a/gpu/lab');
    expect(shareLink('https://hub.example', { ...state, url: undefined })).toBe(
      ''
    );
  });

  it('names users and groups', () => {
    expect(shareLabel({ user: 'bob' })).toBe('bob');
    expect(shareLabel({ group: 'vision' })).toBe('group vision');
  });

  it('says whom one may share with, or why nobody', () => {
    expect(sharingNote(state)).toBe(
      'You can share only with members of your teams (vision).'
    );
    expect(sharingNote({ ...state, candidates: [] })).toBe(
      'Everyone you may share with has access.'
    );
    expect(sharingNote({ ...state, candidates: [], shares: [] })).toBe(
      'Nobody to share with: you can share only with members of your teams (vision).'
    );
    expect(sharingNote({ ...state, sharing: 'off' })).toBe(
      'Sharing servers is turned off on this hub.'
    );
    expect(sharingNote({ enabled: false, shares: [], candidates: [] })).toMatch(
      /team hub/
    );
  });
});
