/**
 * tether/testing: the conformance suites for stores and adapters (ours or a third party's), and the
 * misbehaving-store wrapper they use. Import only from tests: it registers `node:test` cases.
 * @module
 * @example
 * import { runStoreSuite, runAdapterSuite } from 'tether/testing';
 * runStoreSuite({ name: 'my-store', open: async (clock) => new MyStore({ clock }) });
 */
export { runStoreSuite, ManualClock, makeKey, makeRecord } from './store-suite.js';
export type { StoreSuiteFactory } from './store-suite.js';
export { runAdapterSuite, SUITE_SECRETS } from './adapter-suite.js';
export type { AdapterSuiteOptions, SuiteEnv, SuiteContext } from './adapter-suite.js';
export { suiteRoutes, routeFor, listen, client } from './adapter-kit.js';
export type { SuiteData, SuiteRoute, RouteResult, RouteHooks, RunningApp, Reply, CallOptions } from './adapter-kit.js';
export { FaultyStore } from './faulty-store.js';
export type { StoreFault, StoreMethod, StoreCall } from './faulty-store.js';
