/**
 * tether/flow: multi-step flows (checkout, sign-up wizards) whose order the server enforces and whose
 * progress lives in the user context, so it survives logout and resumes on another device, or, for a
 * visitor without an account yet, in the session (`sessionFlows`).
 * @module
 * @example
 * import { defineFlow } from 'tether/flow';
 * const checkout = defineFlow({
 *   name: 'checkout',
 *   steps: [
 *     { name: 'shipping', parse: parseShipping },
 *     // A step's parse also gets what the steps before it kept: here, the shipping country.
 *     { name: 'payment', parse: (input, earlier) => parsePayment(input, earlier.shipping as Shipping) },
 *     { name: 'review' }, // no input: the flow is completed from here with complete()
 *   ],
 * }).using(tether.users);
 * await checkout.submit(userId, 'shipping', body); // → { step: 'payment', data: { shipping: … }, … }
 * await checkout.complete(userId, (run) => placeOrder(run.runId, run.data));
 * // Before the user exists: progress kept in the request's session.
 * const signup = defineFlow({ name: 'signup', steps: [{ name: 'email', parse: parseEmail }] }).using(sessionFlows);
 * await signup.submit(req.session, 'email', body);
 */
import { randomUUID } from 'node:crypto';
import rfdc from 'rfdc';
import { dequal } from 'dequal';
import { FlowCompletingError, FlowRunChangedError, FlowRunNotCurrentError, FlowStepOutOfOrderError, FlowStepUnknownError, OptionsInvalidError } from '../core/errors.js';
import { checkOptions } from '../core/options-check.js';
import { systemClock } from '../core/store.js';
import type { Clock } from '../core/store.js';
import { UserContexts } from '../core/user-context.js';
import { flowChannels } from '../observability/channels.js';
import type { FlowEvent, FlowMessage } from '../observability/channels.js';

/**
 * What the steps before a step kept, by step name (`{ shipping: … }`): a deep-frozen copy, so a step's
 * `parse` can check its input against them but not change them.
 */
export type FlowEarlier = Readonly<Record<string, unknown>>;

export interface FlowStepDefinition<D = unknown> {
  /** Letters, digits, `-` and `_`; unique within the flow. */
  name: string;
  /**
   * Checks the step's input and returns what to keep (only what later steps need: never a full card
   * number). `earlier` holds what the steps before this one kept, so the input can be checked against
   * them (a payment method the shipping country allows). Throw to refuse; the flow is then left
   * unchanged. Must be pure: it runs before the write, and runs again on the earlier data the write
   * finds when another request changed them meanwhile.
   * Absent: the step takes no input; only the last step may lack it, and the flow completes from there.
   */
  parse?: (input: unknown, earlier: FlowEarlier) => D;
}

export interface FlowDefinition {
  name: string;
  steps: readonly FlowStepDefinition[];
  /**
   * A run with no submit or back for this long is over: it is treated as absent (a fresh flow to view,
   * a new run on the first step's submit, later steps out of order, nothing to complete). A positive
   * integer; no timer waits for it, so it may exceed 2^31 − 1 ms (a checkout kept 30 days). @default undefined: a run lasts as long as the
   * context that keeps it
   */
  idleTimeoutMs?: number;
  /**
   * Time for `updatedAt` and `idleTimeoutMs`. @default the context store's own `clock` when it has one
   * (`tether.users` has the engine's), else the system clock
   */
  clock?: Clock;
}

/**
 * What is kept in the user context (or the session's data) under `flows[<name>]`. Beside it,
 * `flows["<name>:completed"]` lists the runIds the flow completed last.
 */
export interface FlowState {
  /** One per run of the flow: the idempotency key of its completion. */
  runId: string;
  /** Index of the step the user is at; `steps.length` when every step took its input. */
  step: number;
  /**
   * The steps posted before it, by name (the first `step` of the definition that stored the run), so a
   * run stored under an older definition resumes at the first step of the current one it has not
   * posted. Absent from runs stored before it was kept: `step` is taken as it is then.
   */
  done?: string[];
  data: Record<string, unknown>;
  updatedAt: number;
  /**
   * When `complete()` took the run to run its action (the runner's clock): until the run ends, or for
   * COMPLETING_HOLD_MS, its steps cannot be posted again, nor the run moved back or reset, so that no
   * change is acknowledged and then lost with the run the completion ends.
   */
  completing?: number;
  /**
   * Names the run's data as the completions that took it found it: set by the first that takes it, kept by
   * the others, and removed by a step posted or a `back()` once the hold lapsed. A completion ends the run
   * only while it still holds the hold it took; otherwise the run was changed after its action got it.
   */
  hold?: string;
}

/**
 * How long a completion's hold on its run lasts, unless its action renews it (`renewHold()`): a process
 * that died in the action leaves it, and the run can be changed again after this (a completion is never
 * held back by it). A change accepted then breaks the hold: see FlowRunChangedError.
 */
export const COMPLETING_HOLD_MS = 60_000;

export interface FlowView {
  flow: string;
  /** Name of the current step, or 'complete' when every step (all with input) was posted. */
  step: string;
  index: number;
  steps: string[];
  data: Record<string, unknown>;
  /** Null until the first step is posted. */
  runId: string | null;
}

/**
 * Where a flow keeps its progress, by key `K`: `tether.users` (the user ID) or `sessionFlows` (the
 * request's Session). `update` must not lose a change made concurrently under the same key: it runs
 * `fn` again on the fresh context after a conflict (compare-and-set), or runs changes one at a time.
 * The runner's `fn` is pure and throws, if it does, before its first write.
 */
export interface FlowContextStore<K = string> {
  get(key: K): Promise<Record<string, unknown>>;
  update(key: K, fn: (ctx: Record<string, unknown>) => void | Promise<void>): Promise<unknown>;
  /**
   * Runs `fn` once the change of the `update` under way for `key` is durable, and never if it is not
   * kept: for a store whose update resolves before the change is written (a session's, stored at the
   * request's commit). The flow publishes its events through it, called from inside its update
   * function (once, by its first run that succeeds). Absent: the flow publishes once `update`
   * resolves, for a store whose update is durable then.
   */
  afterWrite?(key: K, fn: () => void): void;
  /** The time its contexts follow; a flow given no `clock` of its own uses it. */
  readonly clock?: Clock;
}

const NAME = /^[A-Za-z][A-Za-z0-9_-]{0,63}$/;
/** Names that session data refuses as keys (they reach prototypes), so a session flow could not keep them. */
const RESERVED = new Set(['constructor', 'prototype']);

function validName(name: unknown): name is string {
  return typeof name === 'string' && NAME.test(name) && !RESERVED.has(name);
}

/** Deep copies that work on a session's data too, a Proxy that structuredClone refuses. */
const copy = rfdc({ proto: false, circles: false });

function deepFreeze<V>(value: V): V {
  if (value !== null && typeof value === 'object') {
    for (const v of Object.values(value)) deepFreeze(v);
    Object.freeze(value);
  }
  return value;
}

const NOTHING_EARLIER: FlowEarlier = Object.freeze({});

export class Flow {
  readonly name: string;
  readonly steps: readonly FlowStepDefinition[];
  /** Undefined: runs never expire. */
  readonly idleTimeoutMs: number | undefined;
  readonly clock: Clock | undefined;
  readonly #names: ReadonlySet<string>;

  constructor(def: FlowDefinition) {
    if (!validName(def?.name)) throw new OptionsInvalidError('defineFlow options.name must be letters, digits, - or _, starting with a letter, and not constructor or prototype');
    // Array.isArray narrows a readonly array to any[]: the steps keep their declared type past the check.
    const steps: readonly FlowStepDefinition[] = def.steps;
    if (!Array.isArray(def.steps) || steps.length === 0) throw new OptionsInvalidError(`defineFlow "${def.name}": options.steps must be a non-empty array`);
    const seen = new Set<string>();
    steps.forEach((s, i) => {
      if (!validName(s?.name)) throw new OptionsInvalidError(`defineFlow "${def.name}": steps[${i}].name must be letters, digits, - or _, and not constructor or prototype`);
      if (seen.has(s.name)) throw new OptionsInvalidError(`defineFlow "${def.name}": step "${s.name}" appears twice`);
      seen.add(s.name);
      if (s.parse !== undefined && typeof s.parse !== 'function') throw new OptionsInvalidError(`defineFlow "${def.name}": steps[${i}].parse must be a function`);
      if (s.parse === undefined && i !== steps.length - 1) throw new OptionsInvalidError(`defineFlow "${def.name}": only the last step may take no input (steps[${i}] "${s.name}" has no parse)`);
    });
    // A run begins with a step posted: a flow whose only step takes no input could never begin, nor complete.
    if (steps.length === 1 && steps[0]!.parse === undefined) throw new OptionsInvalidError(`defineFlow "${def.name}": its only step takes no input (no parse), so no run could begin`);
    checkOptions(`defineFlow "${def.name}"`, def, { name: 'any', steps: 'any', idleTimeoutMs: 'positiveInteger', clock: 'clock' });
    this.name = def.name;
    this.steps = Object.freeze(steps.map((s) => Object.freeze({ ...s })));
    this.#names = seen;
    this.idleTimeoutMs = def.idleTimeoutMs;
    this.clock = def.clock;
  }

  /**
   * The flow run against a context store: `tether.users` (progress per user, keyed by user ID) or
   * `sessionFlows` (progress per session, keyed by the request's Session).
   */
  using<K>(store: FlowContextStore<K>): FlowRunner<K> {
    return new FlowRunner(this, store);
  }

  /** Index from which `complete()` is allowed: the parse-less last step, or past the end. */
  get completeAt(): number {
    return this.steps[this.steps.length - 1]!.parse ? this.steps.length : this.steps.length - 1;
  }

  view(state: FlowState | undefined): FlowView {
    const run = state === undefined ? undefined : this.current(state);
    const index = run?.step ?? 0;
    return {
      flow: this.name,
      step: this.steps[index]?.name ?? 'complete',
      index,
      steps: this.steps.map((s) => s.name),
      data: copy(run?.data ?? {}),
      runId: run?.runId ?? null,
    };
  }

  /**
   * The run as this definition reads it. A deploy may have added, removed, renamed or reordered steps
   * since the run was stored: the user is then at the first step of this definition not among the
   * run's posted ones (`done`), so a step added before the one the user was at must be posted too, and
   * what removed steps kept is dropped. `state` itself when nothing differs; otherwise a new state.
   */
  current(state: FlowState): FlowState {
    const done = Array.isArray(state.done) ? state.done : null;
    let step = 0;
    if (done === null) step = Math.min(Math.max(0, Math.trunc(Number(state.step)) || 0), this.completeAt);
    else while (step < this.steps.length && done.includes(this.steps[step]!.name)) step++;
    const data = state.data !== null && typeof state.data === 'object' ? state.data : {};
    const names = Object.keys(data);
    if (done !== null && step === state.step && data === state.data && names.every((n) => this.#names.has(n))) return state;
    const kept: Record<string, unknown> = {};
    for (const n of names) if (this.#names.has(n)) kept[n] = data[n];
    const read: FlowState = { runId: state.runId, step, done: this.#namesBefore(step), data: kept, updatedAt: state.updatedAt };
    // A completion's hold goes with the run however the run is read: a node running a newer definition
    // (a rolling deploy) must refuse a step of a run that a node running the older one is completing.
    if (state.completing !== undefined) read.completing = state.completing;
    if (state.hold !== undefined) read.hold = state.hold;
    return read;
  }

  /** The names of the steps before the one at `index`: what a run at `index` has posted. */
  #namesBefore(index: number): string[] {
    return this.steps.slice(0, index).map((s) => s.name);
  }

  /** Moves `state` to the step at `index`, its posted steps with it. */
  moveTo(state: FlowState, index: number): void {
    state.step = index;
    state.done = this.#namesBefore(index);
  }
}

/** Declares a flow; see the module example. */
export function defineFlow(def: FlowDefinition): Flow {
  return new Flow(def);
}

function flowsOf(ctx: Record<string, unknown>): Record<string, FlowState> {
  const f = ctx.flows;
  if (typeof f === 'object' && f !== null && !Array.isArray(f)) return f as Record<string, FlowState>;
  const fresh: Record<string, FlowState> = {};
  ctx.flows = fresh;
  return fresh;
}

function stateOf(ctx: Record<string, unknown>, name: string): FlowState | undefined {
  const f = ctx.flows as Record<string, FlowState> | undefined;
  return f && Object.hasOwn(f, name) ? f[name] : undefined;
}

/** Whether a completion holds the run at `now` (see FlowState.completing). */
function held(state: FlowState | undefined, now: number): boolean {
  const at = state?.completing;
  return typeof at === 'number' && Math.abs(now - at) < COMPLETING_HOLD_MS;
}

/** Throws FLOW_COMPLETING while a completion holds the run (see FlowState.completing). */
function checkNotCompleting(state: FlowState | undefined, now: number): void {
  if (held(state, now)) {
    throw new FlowCompletingError('this run of the flow is being completed; its steps can no longer change');
  }
}

/**
 * How many of a flow's completed runs a context remembers (`flows["<name>:completed"]`, oldest first):
 * a completion that finds its run gone tells by them whether another completion of it ended it (and
 * recorded it) or it was removed otherwise, after its hold lapsed (see complete()). A completion still
 * running after this many later runs of the flow completed would take its run for removed.
 */
const COMPLETED_RUNS_KEPT = 4;

/** The key under `flows` of the runs of flow `name` completed last: not a flow name (`:` is not allowed in one). */
function completedKey(name: string): string {
  return `${name}:completed`;
}

/** The runIds of flow `name` completed last in `ctx`, oldest first (none when nothing was kept). */
function completedRuns(ctx: Record<string, unknown>, name: string): string[] {
  const f = ctx.flows as Record<string, unknown> | undefined;
  const runs = f && typeof f === 'object' && Object.hasOwn(f, completedKey(name)) ? f[completedKey(name)] : undefined;
  return Array.isArray(runs) ? runs.filter((r): r is string => typeof r === 'string') : [];
}

/** Records `runId` as completed in the same write that records what its action did (onCompleted). */
function recordCompleted(ctx: Record<string, unknown>, name: string, runId: string): void {
  const runs = completedRuns(ctx, name).filter((r) => r !== runId);
  runs.push(runId);
  (flowsOf(ctx) as Record<string, unknown>)[completedKey(name)] = runs.slice(-COMPLETED_RUNS_KEPT);
}

/**
 * A step posted or a `back()` that changes a run whose completion's hold lapsed breaks that hold: the
 * completion, should it still be running, then finds its run changed and does not end it.
 */
function breakHold(state: FlowState): void {
  delete state.completing;
  delete state.hold;
}

/** Throws FLOW_RUN_NOT_CURRENT when a call names a run (`expected`) that is not the live one. */
function checkRun(state: FlowState | undefined, expected: string | undefined): void {
  if (expected === undefined || state?.runId === expected) return;
  throw new FlowRunNotCurrentError('that run of the flow is no longer the current one; load it again');
}

/** What `complete()` hands its action. */
export interface FlowCompletion {
  /** The run's ID: the same for every completion of the run, never reused; the action's idempotency key. */
  runId: string;
  /** What the run's steps kept, by step name (a copy). */
  data: Record<string, unknown>;
  /**
   * Renews the completion's hold on the run for another COMPLETING_HOLD_MS, for an action that may run
   * longer (a slow payment provider). True while the hold stands; false once the run was changed (or
   * ended) after the hold lapsed: the action should then not go on, as the run is no longer what it got.
   */
  renewHold: () => Promise<boolean>;
}

/** For `submit`, `back` and `reset`. */
export interface FlowCallOptions {
  /**
   * The run the call is meant for (the `runId` of the view the client was shown). Checked in the same
   * write that changes the run: a call for a run that ended meanwhile (completed, reset, expired) is
   * refused with FLOW_RUN_NOT_CURRENT, rather than taken into the next run. Absent: the call works on
   * whatever run is current, and a first step starts one when there is none.
   */
  runId?: string;
}

export interface CompleteOptions<R> {
  /**
   * The run to complete (the `runId` the client confirmed). Checked in the write that takes the run: a
   * run that is not the current one (ended meanwhile, another run begun and ready) is refused with
   * FLOW_RUN_NOT_CURRENT and `action` is not called, so a stale confirm never completes the next run.
   * Absent: whatever run is current and ready is completed.
   */
  runId?: string;
  /**
   * Changes the context (the user context, or the session's data) in the same write that ends the run
   * (e.g. empties the cart). Its effect is stored once per run; like any `update` function it may be
   * re-run on fresh data after a conflict.
   */
  onCompleted?: (ctx: Record<string, unknown>, result: R) => void;
}

/** How many expired runs per flow a process remembers having reported. */
const EXPIRED_RUNS_KEPT = 1024;
const expiredRuns = new WeakMap<Flow, Set<string>>();

/** True the first time `runId` is reported expired in this process (of the last EXPIRED_RUNS_KEPT). */
function firstExpiry(flow: Flow, runId: string): boolean {
  let runs = expiredRuns.get(flow);
  if (runs === undefined) expiredRuns.set(flow, (runs = new Set()));
  if (runs.has(runId)) return false;
  runs.add(runId);
  if (runs.size > EXPIRED_RUNS_KEPT) runs.delete(runs.values().next().value!);
  return true;
}

/** A flow bound to a context store; `key` names whose progress: a user ID, or a Session for `sessionFlows`. */
export class FlowRunner<K = string> {
  readonly flow: Flow;
  readonly #store: FlowContextStore<K>;
  readonly #clock: Clock;
  /** Keys are user IDs, which events may carry (as the engine's do); a Session never goes in one. */
  readonly #userKeyed: boolean;

  constructor(flow: Flow, store: FlowContextStore<K>) {
    this.flow = flow;
    this.#store = store;
    this.#clock = flow.clock ?? store.clock ?? systemClock;
    this.#userKeyed = store instanceof UserContexts;
  }

  async view(key: K): Promise<FlowView> {
    const now = this.#clock.now();
    return this.flow.view(this.#live(await this.#store.get(key), now, this.#expiry(key, now)));
  }

  /** Publishes on the event's channel; builds nothing when it has no subscriber. */
  #publish(event: FlowEvent, key: K, runId: string, at: number, index?: number): void {
    const channel = flowChannels[event];
    if (!channel.hasSubscribers) return;
    const msg: FlowMessage = { event, flow: this.flow.name, runId, at };
    if (index !== undefined) {
      msg.step = this.flow.steps[index]?.name ?? 'complete';
      msg.index = index;
    }
    if (this.#userKeyed) msg.userId = key as string;
    channel.publish(msg);
  }

  /**
   * The context store's update, then `publish` once its change is durable (FlowContextStore.afterWrite):
   * an event is never published for a change that was not kept. `publish` reads what the update's last
   * run left, as a compare-and-set replay may have changed it. It is handed to `afterWrite` by the
   * update's first run that succeeds, not after the update resolves: a session's update runs before the
   * commit begins (the commit waits for it), while a call the handler did not await may resume only
   * once the commit is under way, when the session takes no more callbacks. A replay, at the commit,
   * hands nothing again.
   */
  async #write(key: K, fn: (ctx: Record<string, unknown>) => void, publish: () => void): Promise<void> {
    const store = this.#store;
    if (store.afterWrite === undefined) {
      await store.update(key, fn);
      publish();
      return;
    }
    let handed = false;
    await store.update(key, (ctx) => {
      fn(ctx);
      if (handed) return;
      handed = true;
      store.afterWrite!(key, publish);
    });
  }

  /**
   * Reports an expired run found by one call, once however often the call reads it (a compare-and-set
   * replay reads it again), and once per run in this process however many calls find it (a page that
   * polls its checkout would count each view): the runs reported last are kept, per flow.
   */
  #expiry(key: K, now: number): (runId: string) => void {
    let told = false;
    return (runId) => {
      if (told) return;
      told = true;
      if (!flowChannels.expired.hasSubscribers || !firstExpiry(this.flow, runId)) return;
      this.#publish('expired', key, runId, now);
    };
  }

  /**
   * The flow's state in `ctx`, unless its run has been idle for `idleTimeoutMs` (or longer): it then
   * counts as absent, as the engine counts a session past its idle deadline. It stays stored until a
   * new run or `reset()` replaces it: reading never writes.
   */
  #live(ctx: Record<string, unknown>, now: number, expired: (runId: string) => void): FlowState | undefined {
    const state = stateOf(ctx, this.flow.name);
    if (!state) return undefined;
    const idle = this.flow.idleTimeoutMs;
    // A run being completed does not expire under its completion: a first step posted then would start a
    // new run in its place, and the completion would find its run gone, as if another had ended it.
    if (idle !== undefined && state.updatedAt + idle <= now && !held(state, now)) {
      expired(state.runId);
      return undefined;
    }
    return this.flow.current(state);
  }

  /**
   * Posts a step's input. The current step or any earlier one is accepted; an earlier one updates its
   * data and the flow continues from the step after it. A later one throws FLOW_STEP_OUT_OF_ORDER, and a
   * name the flow does not declare FLOW_STEP_UNKNOWN. The order is checked before the input is parsed,
   * so a step posted too early is refused as such, whatever its input.
   */
  async submit(key: K, stepName: string, input: unknown, options: FlowCallOptions = {}): Promise<FlowView> {
    const expectedRun = options.runId;
    const index = this.flow.steps.findIndex((s) => s.name === stepName);
    // The name usually comes from the request (a path like /flow/:step), so it is a client error; the
    // message lists the flow's steps rather than repeating whatever the client sent.
    if (index < 0) throw new FlowStepUnknownError(`flow "${this.flow.name}" has no such step; its steps are ${this.flow.steps.map((s) => s.name).join(', ')}`);
    const step = this.flow.steps[index]!;
    if (!step.parse) throw new FlowStepOutOfOrderError(`step "${stepName}" takes no input; complete the flow instead`);
    // The time and a new run's ID are taken once, outside the update, so that a replay of it writes what
    // its first run wrote: a session replays a change at its commit only when rerunning it on the data
    // the request loaded gives what the request holds (Session.update).
    const now = this.#clock.now();
    const expired = this.#expiry(key, now);
    let runId: string | undefined;
    // The first step is never out of order and has nothing before it, so only a later one costs this
    // read. The check is repeated in the write below, against the state the write actually changes.
    let earlier = NOTHING_EARLIER;
    if (index > 0) {
      const state = this.#live(await this.#store.get(key), now, expired);
      checkRun(state, expectedRun);
      this.#checkOrder(state, index);
      checkNotCompleting(state, now);
      earlier = this.#earlier(state, index);
    }
    // Parsed outside the update: `parse` runs once, not again on every compare-and-set replay, unless
    // the replay finds other earlier data.
    let parsed = step.parse(input, earlier);
    let stored!: FlowState;
    await this.#write(key, (ctx) => {
      // Everything that may refuse comes before the first write: a refused step leaves the context as it
      // was, a session's too (its data keeps what an update() function wrote before throwing).
      // An expired run is replaced by a new one (new runId, its data dropped) when the first step is posted.
      const found = this.#live(ctx, now, expired);
      checkRun(found, expectedRun);
      this.#checkOrder(found, index);
      checkNotCompleting(found, now);
      if (index > 0) {
        const current = this.#earlier(found, index);
        // An earlier step was posted again since `parse` ran (another device): check the input against
        // what this write keeps, never against earlier data no longer there.
        if (!dequal(current, earlier)) {
          earlier = current;
          parsed = step.parse!(input, current);
        }
      }
      const state: FlowState = found ?? { runId: (runId ??= randomUUID()), step: 0, data: {}, updatedAt: 0 };
      breakHold(state);
      state.data[stepName] = parsed;
      this.flow.moveTo(state, index + 1);
      state.updatedAt = now;
      flowsOf(ctx)[this.flow.name] = state;
      stored = state;
    }, () => this.#publish('step', key, stored.runId, now, index));
    return this.flow.view(stored);
  }

  /** A frozen copy of what the steps before the one at `index` kept. */
  #earlier(state: FlowState | undefined, index: number): FlowEarlier {
    if (!state) return NOTHING_EARLIER;
    const out: Record<string, unknown> = {};
    for (const s of this.flow.steps.slice(0, index)) {
      if (Object.hasOwn(state.data, s.name)) out[s.name] = copy(state.data[s.name]);
    }
    return deepFreeze(out);
  }

  /** Throws FLOW_STEP_OUT_OF_ORDER when the step at `index` comes after the one the user is at. */
  #checkOrder(state: FlowState | undefined, index: number): void {
    const at = state?.step ?? 0;
    if (index <= at) return;
    const expected = this.flow.steps[at]?.name;
    throw new FlowStepOutOfOrderError(`step "${this.flow.steps[index]!.name}" comes later; ${expected ? `post "${expected}" first` : 'the flow is complete'}`);
  }

  /** `state`, when every step that takes input was posted; else throws FLOW_STEP_OUT_OF_ORDER. */
  #ready(state: FlowState | undefined): FlowState {
    if (state && state.step >= this.flow.completeAt) return state;
    const expected = this.flow.steps[state?.step ?? 0]?.name ?? 'complete';
    throw new FlowStepOutOfOrderError(`the flow is not ready to complete; post "${expected}" first`);
  }

  /** One step back (data kept); at the first step throws FLOW_STEP_OUT_OF_ORDER. */
  async back(key: K, options: FlowCallOptions = {}): Promise<FlowView> {
    const expectedRun = options.runId;
    let stored!: FlowState;
    // Taken once, as in submit.
    const now = this.#clock.now();
    const expired = this.#expiry(key, now);
    await this.#write(key, (ctx) => {
      const state = this.#live(ctx, now, expired);
      checkRun(state, expectedRun);
      if (!state || state.step === 0) throw new FlowStepOutOfOrderError('already at the first step');
      checkNotCompleting(state, now);
      breakHold(state);
      this.flow.moveTo(state, state.step - 1);
      state.updatedAt = now;
      flowsOf(ctx)[this.flow.name] = state;
      stored = state;
    }, () => this.#publish('back', key, stored.runId, now, stored.step));
    return this.flow.view(stored);
  }

  /**
   * Completes the flow: checks every step was taken, runs `action` with the run's ID and data, then
   * ends the run. `action` must be idempotent per `runId` (two concurrent completions both reach it).
   * When the run was changed after the completion's hold lapsed (COMPLETING_HOLD_MS), the run is not
   * ended, and this throws FLOW_RUN_CHANGED with the action's result (see FlowRunChangedError); so it
   * does when the run was reset or replaced then, `onCompleted` recording the action all the same.
   */
  async complete<R>(key: K, action: (run: FlowCompletion) => R | Promise<R>, options: CompleteOptions<R> = {}): Promise<R> {
    const now = this.#clock.now();
    const expired = this.#expiry(key, now);
    // Read first, so that a run not ready is refused without a write.
    const found = this.#live(await this.#store.get(key), now, expired);
    checkRun(found, options.runId);
    this.#ready(found);
    // The run is taken (`completing`) in a write before the action runs, and the action gets the data
    // that write found: a step posted again on another device either lands before it, and the action
    // sees it, or after it, and is refused (FLOW_COMPLETING) rather than acknowledged and then ended
    // with the run. Another completion is not held back: `action` is idempotent per runId, and it joins
    // the hold already there (the data is the same), so either one may end the run.
    const fresh = randomUUID();
    let runId!: string;
    let hold!: string;
    let data!: Record<string, unknown>;
    // Set once the action has run: a session's commit that meets another process's write replays this
    // take, then the end below, on the fresh data. Refusing then would fail a request whose action ran;
    // the take does nothing instead, and the end finds the run changed.
    let acted = false;
    await this.#write(key, (ctx) => {
      const live = this.#live(ctx, now, expired);
      if (acted && live?.runId !== runId && completedRuns(ctx, this.flow.name).includes(runId)) {
        // A session's commit replaying this on data where another request (another process) completed
        // the run and recorded it: that request confirmed it, and this take comes after its end. This one
        // is answered as a completion that came after the end is by tether.users (its action, idempotent
        // per runId, only found what the other's did), the commit failing with that error.
        checkRun(live, options.runId);
        this.#ready(live);
        throw new FlowRunNotCurrentError('that run of the flow was completed by another request; load it again');
      }
      if (acted && (live?.runId !== runId || live.step < this.flow.completeAt)) return;
      checkRun(live, options.runId);
      const state = this.#ready(live);
      if (acted) {
        state.completing = now;
        state.hold = typeof state.hold === 'string' ? state.hold : fresh;
        flowsOf(ctx)[this.flow.name] = state;
        return;
      }
      runId = state.runId;
      // Copied now: a session's context is its live data, which `action` could change.
      data = copy(state.data);
      state.completing = now;
      hold = state.hold = typeof state.hold === 'string' ? state.hold : fresh;
      flowsOf(ctx)[this.flow.name] = state;
    }, () => {});
    let taken = now;
    const renewHold = async (): Promise<boolean> => {
      const at = this.#clock.now();
      let held = false;
      await this.#write(key, (ctx) => {
        const state = stateOf(ctx, this.flow.name);
        held = state?.runId === runId && state.hold === hold;
        if (held) state!.completing = at;
      }, () => {});
      if (held) taken = at;
      return held;
    };
    // What the action is given, to compare with what the run holds when it is ended.
    const given = copy(data);
    let result: R;
    try {
      result = await action({ runId, data, renewHold });
      acted = true;
    } catch (err) {
      // The run is given back, as it was, unless it changed meanwhile; failing that, the hold lapses.
      await this.#write(key, (ctx) => {
        const state = stateOf(ctx, this.flow.name);
        if (state?.runId === runId && state.hold === hold && state.completing === taken) delete state.completing;
      }, () => {}).catch(() => {});
      throw err;
    }
    // Set by the update's last run: a replay that finds the run recorded by another completion ended nothing.
    let ended = false;
    let changed = false;
    let removed = false;
    const next = randomUUID();
    await this.#write(key, (ctx) => {
      ended = false;
      changed = false;
      removed = false;
      const state = stateOf(ctx, this.flow.name);
      if (state?.runId !== runId) {
        // Ended by another completion of the run, which ran onCompleted.
        if (completedRuns(ctx, this.flow.name).includes(runId)) return;
        // Removed after the hold lapsed (a reset, or a new run in place of one past idleTimeoutMs; with
        // sessionFlows, by another process that never saw the hold): the action's effect happened all
        // the same, so it is recorded, and a run that replaced this one is left as it is.
        removed = true;
      } else if (state.hold === hold && dequal(this.flow.current(state).data, given)) {
        // The hold names the data the completions found, and a change made after it lapsed removes it. A
        // session's commit replaying this on another process's write may find the hold retaken on data
        // changed meanwhile (that process never saw the hold): the data itself is compared too.
        delete flowsOf(ctx)[this.flow.name];
        ended = true;
      } else {
        // Changed after the hold lapsed: the action ran with the data before the change, which the run
        // keeps, under a new runId, since this one's action has run (an idempotent action would answer
        // its next completion with what this one did, the change left out).
        state.runId = next;
        breakHold(state);
        changed = true;
      }
      recordCompleted(ctx, this.flow.name, runId);
      options.onCompleted?.(ctx, result);
    }, () => {
      if (ended || changed || removed) this.#publish('completed', key, runId, this.#clock.now());
    });
    if (changed) throw new FlowRunChangedError('the run was changed after its action began; what the action did stands, and the run continues under a new runId', result);
    if (removed) throw new FlowRunChangedError('the run was reset or replaced after its action began; what the action did stands', result);
    return result;
  }

  /**
   * Abandons the flow: the next submit starts a new run. Reported as `reset` when a live run was
   * removed; a run already past `idleTimeoutMs` is reported as `expired` instead.
   */
  async reset(key: K, options: FlowCallOptions = {}): Promise<void> {
    const expectedRun = options.runId;
    const now = this.#clock.now();
    const expired = this.#expiry(key, now);
    let removed: string | undefined;
    await this.#write(key, (ctx) => {
      removed = undefined;
      // A reset naming a run that already ended is refused even with nothing stored: the client learns
      // that its run is gone, as a step naming it would.
      checkRun(this.#live(ctx, now, () => {}), expectedRun);
      if (!stateOf(ctx, this.flow.name)) return;
      checkNotCompleting(this.#live(ctx, now, () => {}), now);
      removed = this.#live(ctx, now, expired)?.runId;
      delete flowsOf(ctx)[this.flow.name];
    }, () => {
      if (removed !== undefined) this.#publish('reset', key, removed, now);
    });
  }
}

export { sessionFlows } from './session.js';
