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
  reused: 'tether:session:reused',
} as const;

export type LifecycleEvent = keyof typeof CHANNEL_NAMES;

export interface LifecycleMessage {
  event: LifecycleEvent;
  /** Opaque handle of the session (for regenerated: the new one). */
  handle: string;
  /** For regenerated: the handle of the session it replaced (none for a renewal, which keeps its handle). */
  previousHandle?: string;
  /**
   * The handle of the ID the session is stored under, when that is not `handle` (a session whose ID a
   * renewal replaced keeps the handle of the ID it began with): what `reused` carries for a cookie of
   * that ID presented after the session ended.
   */
  idHandle?: string;
  userId: string | null;
  /**
   * destroyed: 'logout' | 'user' (destroyByUser) | 'limit' (maxSessionsPerUser) | 'anomaly' (userAgentChange
   * or addressChange 'end') | 'all' (destroyAllSessions, handle `*`); expired: 'swept' (deleted by the store's
   * sweep; absent when presented past a timeout); conflict: 'replayed' | 'rejected'; anomaly: 'user-agent' |
   * 'address'. reused has none.
   */
  reason?: string;
  at: number;
}

/** One channel object per name, under the same keys. */
function channelsOf<K extends string>(names: Readonly<Record<K, string>>): Record<K, diagnostics.Channel> {
  return Object.fromEntries(Object.entries(names).map(([k, name]) => [k, diagnostics.channel(name as string)])) as Record<K, diagnostics.Channel>;
}

export const channels = channelsOf(CHANNEL_NAMES);

/** Flow channels (`tether/flow`), one per event, named as the session ones. */
export const FLOW_CHANNEL_NAMES = {
  step: 'tether:flow:step',
  back: 'tether:flow:back',
  completed: 'tether:flow:completed',
  reset: 'tether:flow:reset',
  expired: 'tether:flow:expired',
} as const;

export type FlowEvent = keyof typeof FLOW_CHANNEL_NAMES;

export interface FlowMessage {
  event: FlowEvent;
  /** The flow's declared name. */
  flow: string;
  /** The run the event belongs to (for expired: the run that timed out). */
  runId: string;
  /**
   * step: the step whose input was stored, and its index. back: the step the user is back at. Absent
   * for completed, reset and expired.
   */
  step?: string;
  index?: number;
  /** The user, for a flow kept in user contexts (`tether.users`); absent for `sessionFlows`. */
  userId?: string;
  /** Epoch ms, from the flow's clock. */
  at: number;
}

export const flowChannels = channelsOf(FLOW_CHANNEL_NAMES);
