import { Notification } from '@jupyterlab/apputils';

import { IServerNotification } from '../api/hubTypes';
import { NotificationRelay } from '../hub/plugin';

/** A server notification as `GET api/v1/notifications` lists it. */
function note(
  seq: number,
  message: string,
  extra: Partial<IServerNotification> = {}
): IServerNotification {
  return {
    id: 'run:r1',
    seq,
    message,
    type: 'success',
    source: 'run',
    actions: [],
    created: 0,
    dismissed: false,
    link: '#/experiments/3',
    auto_close: 10000,
    ...extra
  };
}

/** A fake server: each poll answers the next list. */
function server(...answers: IServerNotification[][]) {
  const asked: number[] = [];
  return {
    asked,
    api: {
      notifications: async (after: number) => {
        asked.push(after);
        const notifications = answers.shift() ?? [];
        return { notifications, last: 0 };
      },
      act: async () => ({})
    }
  };
}

describe('NotificationRelay', () => {
  beforeEach(() => Notification.dismiss());

  it('updates a notification the server replaced instead of stacking it', async () => {
    const { api, asked } = server(
      [note(1, "Run 'trial-0' finished (experiment 'sweep')")],
      [note(5, "3 runs finished in experiment 'sweep'")],
      [note(7, "4 runs finished in experiment 'sweep'")]
    );
    const relay = new NotificationRelay(api as any, { poll: false });
    await relay.poll();
    expect(Notification.manager.count).toBe(1);
    await relay.poll();
    await relay.poll();
    expect(asked).toEqual([0, 1, 5]);
    expect(Notification.manager.count).toBe(1);
    const [shown] = Notification.manager.notifications;
    expect(shown.message).toBe("4 runs finished in experiment 'sweep'");
    expect(shown.options.actions?.[0].label).toBe('Open');
    relay.dispose();
  });

  it('shows it again when the user closed it, and dismisses what the server did', async () => {
    const { api } = server(
      [note(1, 'one')],
      [note(2, 'two')],
      [note(3, 'two', { dismissed: true }), note(4, 'other', { id: 'job:j' })]
    );
    const relay = new NotificationRelay(api as any, { poll: false });
    await relay.poll();
    Notification.dismiss(Notification.manager.notifications[0].id);
    expect(Notification.manager.count).toBe(0);
    await relay.poll();
    expect(Notification.manager.notifications.map(n => n.message)).toEqual([
      'two'
    ]);
    await relay.poll();
    expect(Notification.manager.notifications.map(n => n.message)).toEqual([
      'other'
    ]);
    relay.dispose();
  });
});
