/**
 * **Share…**: share this (hub-spawned) server with teammates through
 * JupyterHub's shares. The dialog lists the current shares with **Revoke**,
 * offers the teammates the hub allows (members of the user's teams) and shows
 * the link a teammate opens; the hub refuses anyone else and says why.
 */
import {
  JupyterFrontEnd,
  JupyterFrontEndPlugin
} from '@jupyterlab/application';
import { Dialog, ICommandPalette, showDialog } from '@jupyterlab/apputils';
import { ITranslator, nullTranslator } from '@jupyterlab/translation';
import { Widget } from '@lumino/widgets';

import { describeError, HubOpsApi, ISharesResponse, MLOpsClient } from '../api';
import { addToPalette } from '../activation';
import { IMLOps } from '../tokens';

export const SHARE_COMMAND = 'jupyter-mlops:share-server';

/** The link a teammate opens: the server's JupyterLab through the hub. */
export function shareLink(origin: string, state: ISharesResponse): string {
  return state.url ? `${origin}${state.url.replace(/\/?$/, '/')}lab` : '';
}

/** "zoe", "group vision" for a share. */
export function shareLabel(share: { user?: string; group?: string }): string {
  return share.user ?? `group ${share.group ?? '?'}`;
}

/** What the dialog says above the picker. */
export function sharingNote(state: ISharesResponse): string {
  if (!state.enabled) {
    return 'Sharing needs a server started by a team hub (JupyterHub with jupyter-mlops).';
  }
  if (state.sharing === 'off') {
    return 'Sharing servers is turned off on this hub.';
  }
  if (!state.candidates.length) {
    return state.shares.length
      ? 'Everyone you may share with has access.'
      : `Nobody to share with: you can share ${state.rule || 'with nobody'}.`;
  }
  return state.rule ? `You can share ${state.rule}.` : '';
}

/** The dialog's body: shares, the teammate picker, errors; re-rendered after each change. */
export class ShareWidget extends Widget {
  constructor(private readonly _api: HubOpsApi) {
    super();
    this.addClass('jp-mlops-Share');
    this.node.textContent = 'Loading…';
    void this.run(() => this._api.shares());
  }

  /** The last answer (null before the first). */
  get state(): ISharesResponse | null {
    return this._state;
  }

  /** Do `work` (a call answering the new state), then show it or the error. */
  async run(work: () => Promise<ISharesResponse>): Promise<void> {
    try {
      this._state = await work();
      this._error = '';
    } catch (error) {
      this._error = describeError(error);
    }
    this._render();
  }

  private _render(): void {
    const node = this.node;
    node.textContent = '';
    const state = this._state;
    if (state) {
      const link = shareLink(window.location.origin, state);
      if (state.enabled && link) {
        const p = document.createElement('p');
        p.append('Teammates open this server at ');
        const code = document.createElement('code');
        code.className = 'jp-mlops-Share-link';
        code.textContent = link;
        p.append(code);
        node.appendChild(p);
      }
      const heading = document.createElement('div');
      heading.className = 'jp-mlops-Share-heading';
      heading.textContent = state.shares.length
        ? 'Shared with'
        : 'Not shared with anyone';
      node.appendChild(heading);
      const list = document.createElement('ul');
      list.className = 'jp-mlops-Share-list';
      for (const share of state.shares) {
        const li = document.createElement('li');
        li.textContent = `${shareLabel(share)} `;
        if (share.user) {
          const user = share.user;
          const revoke = document.createElement('button');
          revoke.className = 'jp-mod-styled jp-mod-warn jp-mlops-Share-revoke';
          revoke.textContent = 'Revoke';
          revoke.title = `Revoke ${user}'s access`;
          revoke.onclick = () => void this.run(() => this._api.unshare(user));
          li.appendChild(revoke);
        }
        list.appendChild(li);
      }
      node.appendChild(list);
      const note = sharingNote(state);
      if (note) {
        const p = document.createElement('p');
        p.className = 'jp-mlops-Share-note';
        p.textContent = note;
        node.appendChild(p);
      }
      if (state.enabled && state.candidates.length) {
        const row = document.createElement('div');
        row.className = 'jp-mlops-Share-pick';
        const select = document.createElement('select');
        select.className = 'jp-mlops-Share-user';
        select.setAttribute('aria-label', 'Teammate');
        for (const name of state.candidates) {
          const option = document.createElement('option');
          option.value = option.textContent = name;
          select.appendChild(option);
        }
        const share = document.createElement('button');
        share.className = 'jp-mod-styled jp-mod-accept jp-mlops-Share-add';
        share.textContent = 'Share';
        share.onclick = () =>
          void this.run(() => this._api.share(select.value));
        row.append(select, share);
        node.appendChild(row);
      }
    }
    if (this._error) {
      const p = document.createElement('p');
      p.className = 'jp-mlops-Share-error';
      p.textContent = this._error;
      node.appendChild(p);
    }
  }

  private _state: ISharesResponse | null = null;
  private _error = '';
}

export const sharePlugin: JupyterFrontEndPlugin<void> = {
  id: 'jupyter-mlops:share',
  description: 'Share… this hub server with teammates (JupyterHub shares).',
  autoStart: true,
  requires: [IMLOps],
  optional: [ICommandPalette, ITranslator],
  activate: (
    app: JupyterFrontEnd,
    mlops: { client: MLOpsClient },
    palette: ICommandPalette | null,
    translator: ITranslator | null
  ): void => {
    const trans = (translator ?? nullTranslator).load('jupyter_mlops');
    const api = new HubOpsApi(mlops.client);
    app.commands.addCommand(SHARE_COMMAND, {
      label: trans.__('MLOps: Share server…'),
      caption: trans.__('Share this server with teammates through the hub'),
      execute: async () => {
        await showDialog({
          title: trans.__('Share this server'),
          body: new ShareWidget(api),
          buttons: [Dialog.okButton({ label: trans.__('Close') })]
        });
      }
    });
    addToPalette(palette, [SHARE_COMMAND]);
  }
};
