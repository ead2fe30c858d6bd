/**
 * Every diagnostics channel Tether publishes on, named `tether:<area>:<event>`. Messages carry no
 * session ID and no cookie: `handle` is an opaque per-session value safe to log.
 * @module
 */
import diagnostics from 'node:diagnostics_channel';

export const CHANNEL_NAMES = {
  created: 'tether:session:created',
  regenerated: 'tether:session:regenerated',
  destroyed: 'tether:session:destroyed',
  expired: 'tether:session:expired',
  conflict: 'tether:session:conflict',
  anomaly: 'tether:session:anomaly',
} as const;

export type LifecycleEvent = keyof typeof CHANNEL_NAMES;

export interface LifecycleMessage {
  event: LifecycleEvent;
  /** Opaque handle of the session (for regenerated: the new one). */
  handle: string;
  /** For regenerated: the handle of the session it replaced. */
  previousHandle?: string;
  userId: string | null;
  /**
   * destroyed: 'logout' | 'user' (destroyByUser) | 'limit' (maxSessionsPerUser) | 'anomaly' (userAgentChange
   * 'end'); expired: 'swept' (deleted by the store's sweep; absent when presented past a timeout);
   * conflict: 'replayed' | 'rejected'; anomaly: 'user-agent'.
   */
  reason?: string;
  at: number;
}

export const channels = {
  created: diagnostics.channel(CHANNEL_NAMES.created),
  regenerated: diagnostics.channel(CHANNEL_NAMES.regenerated),
  destroyed: diagnostics.channel(CHANNEL_NAMES.destroyed),
  expired: diagnostics.channel(CHANNEL_NAMES.expired),
  conflict: diagnostics.channel(CHANNEL_NAMES.conflict),
  anomaly: diagnostics.channel(CHANNEL_NAMES.anomaly),
};
