/**
 * Flows kept in the session rather than a user context: for visitors without an account yet (a
 * sign-up wizard before the user exists), whose progress lasts as long as their session.
 * @module
 */
import type { Session, SessionData, UpdateFn } from '../core/session.js';
import type { FlowContextStore } from './index.js';

/**
 * A flow context store keyed by the request's Session: progress lives in `session.data.flows[<name>]`
 * and is stored with the request's commit, before the response goes out.
 *
 * Changes go through `session.update()`: requests of one session that may write it take their turn
 * at the per-session gate, so in one process the second sees the first's step; across processes, a
 * commit that meets another's write replays the flow's change on the fresh data (order checked, the
 * input parsed again if the earlier steps changed) instead of overwriting it. A refused replay fails
 * that request with the flow's error. The flow's events (`step`, `back`, `completed`, `reset`) are
 * published once the commit has stored the change (`session.afterCommit`): none for a commit that
 * fails or a request that is abandoned.
 * @example
 * const signup = defineFlow({ name: 'signup', steps }).using(sessionFlows);
 * app.post<{ Params: { step: string } }>('/signup/:step', async (req) => signup.submit(req.session, req.params.step, req.body));
 */
export const sessionFlows: FlowContextStore<Session<object>> = Object.freeze({
  // The request's own data, not a copy: the runner only reads it, and copies what it hands out.
  get: (session: Session<object>) => Promise.resolve(session.data as SessionData),
  update: (session: Session<object>, fn: (ctx: SessionData) => void | Promise<void>) => session.update(fn as UpdateFn<object>),
  // A change is kept only once the request's commit stores it.
  afterWrite: (session: Session<object>, fn: () => void) => session.afterCommit(fn),
});
