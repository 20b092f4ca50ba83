/** The hub's team operations and the server's notifications, over `MLOpsClient`. */
import { MLOpsClient } from './client';
import {
  INotificationSettings,
  INotificationSettingsResponse,
  INotificationsResponse,
  IQuotaResponse,
  ISharesResponse
} from './hubTypes';

/** Typed access to `api/v1/hub/…` and `api/v1/notifications`. */
export class HubOpsApi {
  constructor(readonly client: MLOpsClient) {}

  /** The team's GPU use (proxied to the hub by the server). */
  quota(): Promise<IQuotaResponse> {
    return this.client.request<IQuotaResponse>('v1', 'hub/quota');
  }

  /** Notifications newer than `after` (a sequence number). */
  notifications(after: number): Promise<INotificationsResponse> {
    return this.client.request<INotificationsResponse>('v1', 'notifications', {
      query: { after }
    });
  }

  /** Keep the user's notification settings on the server (e-mail, webhooks, filters). */
  saveSettings(
    settings: Partial<INotificationSettings>
  ): Promise<INotificationSettingsResponse> {
    return this.client.request<INotificationSettingsResponse>(
      'v1',
      'notifications/settings',
      { method: 'POST', body: { settings } }
    );
  }

  /** Press a notification's button (e.g. `keep`). */
  act(id: string, action: string): Promise<unknown> {
    return this.client.request<unknown>(
      'v1',
      `notifications/${encodeURIComponent(id)}/actions/${encodeURIComponent(action)}`,
      { method: 'POST', body: {} }
    );
  }

  /** Who this server is shared with (JupyterHub shares), and the teammates it may be. */
  shares(): Promise<ISharesResponse> {
    return this.client.request<ISharesResponse>('v1', 'hub/shares');
  }

  /** Share this server with `user` (the hub refuses anyone outside the user's teams). */
  share(user: string): Promise<ISharesResponse> {
    return this.client.request<ISharesResponse>('v1', 'hub/shares', {
      method: 'POST',
      body: { user }
    });
  }

  /** Revoke `user`'s share of this server. */
  unshare(user: string): Promise<ISharesResponse> {
    return this.client.request<ISharesResponse>('v1', 'hub/shares', {
      method: 'DELETE',
      body: { user }
    });
  }
}
