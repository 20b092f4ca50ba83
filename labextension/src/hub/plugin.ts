/**
 * On a team server of a hub: the team's GPU use in the status bar ("vision ·
 * GPUs 3/4", a click lists who holds them). On every server: its notifications
 * (what ended, with an Open button; the culler's warning with its **Keep
 * running** button) shown with JupyterLab's Notification API, and the
 * notification settings sent to the server.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Notification } from '@jupyterlab/apputils';
import { IStatusBar, showPopup } from '@jupyterlab/statusbar';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { ISettingRegistry } from '@jupyterlab/settingregistry';

import {
  HubOpsApi,
  INotificationSettings,
  IQuotaResponse,
  ITeamQuota,
  MLOpsClient
} from '../api';
import { IMLOps } from '../tokens';

/** The plugin whose settings (schema/notifications.json) say what to tell. */
export const NOTIFICATIONS_PLUGIN_ID = 'jupyter-mlops:notifications';

/** How often the status bar asks for the team's use. */
export const QUOTA_POLL_MS = 10000;
/** How often the server's notifications are polled. */
export const NOTIFICATIONS_POLL_MS = 3000;

/** "vision · GPUs 3/4". */
export function quotaText(team: ITeamQuota): string {
  return `${team.team} · GPUs ${team.gpus}/${team.gpu_quota}`;
}

/** "alice: notebook, 2 GPUs" per holder; "No GPUs in use" when none. */
export function holderLines(team: ITeamQuota): string[] {
  if (!team.holders.length) {
    return ['No GPUs in use'];
  }
  return team.holders.map(h => {
    const what =
      h.kind === 'job'
        ? `job ${h.name}`
        : h.name
          ? `notebook ${h.name}`
          : 'notebook';
    return `${h.user}: ${what}, ${h.gpus} GPU${h.gpus === 1 ? '' : 's'}`;
  });
}

/** The status-bar item with the team's GPU use. */
export class TeamQuotaStatus extends Widget {
  constructor(private readonly _api: HubOpsApi) {
    super();
    this.addClass('jp-mlops-TeamQuota');
    this.node.title = 'Team GPUs: click for who holds them';
    this.node.addEventListener('click', () => this._popup());
    void this._update();
  }

  /** The last answer (null until one came). */
  get quota(): IQuotaResponse | null {
    return this._quota;
  }

  dispose(): void {
    window.clearTimeout(this._timer);
    super.dispose();
  }

  private _team(): ITeamQuota | undefined {
    const q = this._quota;
    return q?.teams.find(t => t.team === q.team) ?? q?.teams[0];
  }

  private async _update(): Promise<void> {
    try {
      this._quota = await this._api.quota();
    } catch {
      this._quota = null; // the hub unreachable for a moment: try again later
    }
    if (this.isDisposed) {
      return;
    }
    if (this._quota && !this._quota.enabled) {
      this.node.textContent = '';
      return; // not a team server: nothing to poll for
    }
    const team = this._team();
    this.node.textContent = team ? quotaText(team) : '';
    this.node.dataset.gpus = team ? String(team.gpus) : '';
    this._timer = window.setTimeout(() => void this._update(), QUOTA_POLL_MS);
  }

  private _popup(): void {
    const team = this._team();
    if (!team) {
      return;
    }
    const body = new Widget();
    body.addClass('jp-mlops-TeamQuota-popup');
    const title = document.createElement('div');
    title.className = 'jp-mlops-TeamQuota-title';
    title.textContent = `Team ${team.team}: ${team.gpus} of ${team.gpu_quota} GPUs in use`;
    body.node.appendChild(title);
    const list = document.createElement('ul');
    for (const line of holderLines(team)) {
      const li = document.createElement('li');
      li.textContent = line;
      list.appendChild(li);
    }
    body.node.appendChild(list);
    showPopup({ body, anchor: this, align: 'left' });
  }

  private _quota: IQuotaResponse | null = null;
  private _timer = 0;
}

/** Open a `#/...` link of the extension (runs, pipeline runs, jobs, deployments). */
export function openFragment(fragment: string): void {
  if (window.location.hash === fragment) {
    window.dispatchEvent(new HashChangeEvent('hashchange'));
  } else {
    window.location.hash = fragment;
  }
}

/**
 * Send the notification settings of the settings editor to the server, which
 * keeps them (e-mails and webhooks go out while no JupyterLab is open): when
 * they change, and once loaded if the user set any (so settings made through
 * the REST API are not overwritten by the defaults of a JupyterLab opened later).
 */
export function syncNotificationSettings(
  registry: ISettingRegistry | null,
  api: HubOpsApi
): void {
  if (!registry) {
    return;
  }
  const send = (settings: ISettingRegistry.ISettings) => {
    const composite = settings.composite as unknown as INotificationSettings;
    api.saveSettings(composite).catch(reason => {
      Notification.error(
        `MLOps notification settings not saved on the server: ${String(
          (reason as Error)?.message ?? reason
        )}`,
        { autoClose: false }
      );
    });
  };
  registry
    .load(NOTIFICATIONS_PLUGIN_ID)
    .then(settings => {
      if (Object.keys(settings.user).length > 0) {
        send(settings);
      }
      settings.changed.connect(() => send(settings));
    })
    .catch(reason => {
      console.warn('jupyter-mlops: notification settings not loaded', reason);
    });
}

/**
 * Shows the server's notifications in JupyterLab; buttons call back. A
 * notification the server replaces (same id: a sweep's "12 runs finished"
 * counting up) is updated in place rather than stacked.
 */
export class NotificationRelay {
  constructor(
    private readonly _api: Pick<HubOpsApi, 'notifications' | 'act'>,
    options: { poll?: boolean } = {}
  ) {
    if (options.poll ?? true) {
      void this._loop();
    }
  }

  dispose(): void {
    this._disposed = true;
    window.clearTimeout(this._timer);
  }

  /** Ask the server once and show what is new. */
  async poll(): Promise<void> {
    const answer = await this._api.notifications(this._after);
    for (const n of answer.notifications) {
      this._after = Math.max(this._after, n.seq);
      const shown = this._shown.get(n.id);
      if (n.dismissed) {
        if (shown) {
          Notification.dismiss(shown);
          this._shown.delete(n.id);
        }
        continue;
      }
      const type = n.type === 'default' ? 'default' : n.type;
      const actions: Notification.IAction[] = n.actions.map(a => ({
        label: a.label,
        caption: a.label,
        displayType: 'accent' as const,
        callback: () => {
          void this._api.act(n.id, a.id).catch(reason => {
            Notification.error(`Could not ${a.label}: ${String(reason)}`);
          });
        }
      }));
      const link = n.link;
      if (link) {
        // The link router (index.ts) opens `#/...` fragments on hashchange.
        actions.unshift({
          label: 'Open',
          caption: 'Open it in JupyterLab',
          displayType: 'accent',
          callback: () => openFragment(link)
        });
      }
      const options = {
        autoClose: n.auto_close ? n.auto_close : (false as const),
        actions
      };
      // Updated in place while JupyterLab still lists it (the user may have
      // closed it: then it comes back as a new one).
      if (
        shown &&
        Notification.update({ id: shown, message: n.message, type, ...options })
      ) {
        continue;
      }
      this._shown.set(n.id, Notification.emit(n.message, type, options));
    }
  }

  private async _loop(): Promise<void> {
    try {
      await this.poll();
    } catch {
      // the server restarting: try again
    }
    if (!this._disposed) {
      this._timer = window.setTimeout(
        () => void this._loop(),
        NOTIFICATIONS_POLL_MS
      );
    }
  }

  private _after = 0;
  private _shown = new Map<string, string>();
  private _timer = 0;
  private _disposed = false;
}

export const notificationsPlugin: JupyterFrontEndPlugin<void> = {
  id: NOTIFICATIONS_PLUGIN_ID,
  description:
    "The server's notifications in JupyterLab (what ended, with a link to it; the culler's " +
    'warning) and the settings saying what to tell, and how.',
  autoStart: true,
  requires: [IMLOps],
  optional: [ISettingRegistry],
  activate: (
    app: JupyterFrontEnd,
    mlops: { client: MLOpsClient },
    registry: ISettingRegistry | null
  ): void => {
    const api = new HubOpsApi(mlops.client);
    new NotificationRelay(api);
    syncNotificationSettings(registry, api);
  }
};

export const hubPlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:hub',
  description:
    "A team server's GPU quota in the status bar and the server's notifications.",
  autoStart: true,
  requires: [IMLOps],
  optional: [IStatusBar, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    mlops: { client: MLOpsClient },
    statusBar: IStatusBar | null,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const api = new HubOpsApi(mlops.client);
    if (statusBar) {
      const item = new TeamQuotaStatus(api);
      item.node.title = trans.__('Team GPUs: click for who holds them');
      statusBar.registerStatusItem('jupyter-mlops:team-quota', {
        item,
        align: 'left',
        rank: 6,
        isActive: () => !!item.node.textContent
      });
    }
  }
};
