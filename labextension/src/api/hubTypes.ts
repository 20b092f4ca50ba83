/** Types of the hub routes of a team server (`api/v1/hub/…`) and of `api/v1/notifications`. */

/** One holder of a team's GPUs: a notebook server or a training job. */
export interface IGpuHolder {
  user: string;
  kind: 'notebook' | 'job';
  /** The server's name ('' for the default one) or the job's. */
  name: string;
  gpus: number;
  /** Seconds since the epoch. */
  since: number;
}

/** A team's GPU use. */
export interface ITeamQuota {
  team: string;
  gpu_quota: number;
  gpus: number;
  max_gpus_per_user: number;
  servers: number;
  max_servers: number | null;
  holders: IGpuHolder[];
}

/** `GET api/v1/hub/quota`. */
export interface IQuotaResponse {
  /** False when the server is not a team server of a hub: nothing to show. */
  enabled: boolean;
  team?: string;
  user?: string;
  teams: ITeamQuota[];
}

/** A button of a notification. */
export interface INotificationAction {
  id: string;
  label: string;
}

/** What the server has to tell the user. */
export interface IServerNotification {
  id: string;
  seq: number;
  message: string;
  type: 'info' | 'success' | 'warning' | 'error' | 'default' | 'in-progress';
  source: string;
  actions: INotificationAction[];
  created: number;
  dismissed: boolean;
  /** The `#/...` link of what it is about ('' when none): an Open button. */
  link?: string;
  /** Milliseconds until the toast hides (0: it stays until closed). */
  auto_close?: number;
}

/** The user's notification settings (the settings editor's keys). */
export interface INotificationSettings {
  jupyterlab: boolean;
  events: string[];
  failuresOnly: boolean;
  experiments: string[];
  pipelines: string[];
  minDuration: number;
  /** Runs of one experiment ending alike within this many seconds: one notification (0: off). */
  groupRuns: number;
  email: string;
  webhooks: { url: string; secret?: string }[];
}

/** `GET|POST api/v1/notifications/settings`. */
export interface INotificationSettingsResponse {
  settings: INotificationSettings;
  /** Whether the server can send e-mails. */
  smtp: boolean;
}

/** `GET api/v1/notifications`. */
export interface INotificationsResponse {
  notifications: IServerNotification[];
  last: number;
}

/** One share of this server. */
export interface IServerShare {
  user?: string;
  group?: string;
  created_at: string;
}

/** `api/v1/hub/shares`: who this server is shared with, and with whom it may be. */
export interface ISharesResponse {
  /** False when the server is not a team server of a hub: no sharing. */
  enabled: boolean;
  /** `owner/name`. */
  server?: string;
  /** The server's path through the hub, e.g. `/user/alice/`. */
  url?: string;
  sharing?: 'team' | 'anyone' | 'off';
  /** Who may be picked (e.g. "only with members of your teams (vision)"). */
  rule?: string;
  shares: IServerShare[];
  candidates: string[];
}
