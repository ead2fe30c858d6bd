/** Option checking of runCluster and acceptHandoff: required options, unknown keys, unsafe combinations. */
import { describe, it } from 'node:test';
import assert from 'node:assert/strict';
import { resolveClusterOptions, resolveWorkerOptions, CLUSTER_DEFAULTS } from '../../../src/cluster/options.js';
import type { ClusterOptions } from '../../../src/cluster/options.js';

const start = (): never => { throw new Error('not called'); };
const invalid = (fn: () => unknown, re: RegExp): void => {
  assert.throws(fn, (err: Error & { code?: string }) => err.code === 'OPTIONS_INVALID' && re.test(err.message));
};

describe('resolveClusterOptions', () => {
  it('resolveClusterOptions when given the minimum then the defaults fill the rest', () => {
    const o = resolveClusterOptions({ workers: 2, port: 0, startWorker: start });
    assert.equal(o.host, CLUSTER_DEFAULTS.host);
    assert.equal(o.cookieName, 'sid');
    assert.equal(o.maxHeadBytes, 16 * 1024);
    assert.ok(Object.isFrozen(o));
  });
  it('resolveClusterOptions when an option is misspelt then it names it', () => {
    invalid(() => resolveClusterOptions({ workers: 2, port: 0, startWorker: start, worker: 3 } as unknown as ClusterOptions), /options\.worker is not an option/);
  });
  it('resolveClusterOptions when workers or port is missing or wrong then it says which', () => {
    invalid(() => resolveClusterOptions({ port: 0, startWorker: start } as unknown as ClusterOptions), /workers is required/);
    invalid(() => resolveClusterOptions({ workers: 0, port: 0, startWorker: start }), /workers must be a positive integer/);
    invalid(() => resolveClusterOptions({ workers: 1, port: 70000, startWorker: start }), /port must be an integer port/);
  });
  it('resolveClusterOptions when both or neither of startWorker and workerMain are given then it refuses', () => {
    invalid(() => resolveClusterOptions({ workers: 1, port: 0 }), /exactly one of/);
    invalid(() => resolveClusterOptions({ workers: 1, port: 0, startWorker: start, workerMain: 'w.js' }), /exactly one of/);
  });
  it('resolveClusterOptions when the cookie name is not a token then it refuses', () => {
    invalid(() => resolveClusterOptions({ workers: 1, port: 0, startWorker: start, cookieName: 'a;b' }), /cookieName/);
  });
  it('resolveClusterOptions when the node name could not go out in a header as sent (outside printable ASCII) then it refuses', () => {
    for (const nodeName of ['nœud', 'a\r\nb', ' padded ', 'tab\there']) {
      invalid(() => resolveClusterOptions({ workers: 1, port: 0, startWorker: start, nodeName }), /nodeName/);
    }
    assert.equal(resolveClusterOptions({ workers: 1, port: 0, startWorker: start, nodeName: 'eu-west a:1' }).nodeName, 'eu-west a:1');
  });
  it('resolveClusterOptions when a timeout or delay is over 2^31 - 1 ms then it refuses, and at the bound it accepts', () => {
    for (const key of ['headTimeoutMs', 'drainDelayMs', 'shutdownTimeoutMs', 'restartWindowMs'] as const) {
      invalid(() => resolveClusterOptions({ workers: 1, port: 0, startWorker: start, [key]: 2_147_483_648 }), new RegExp(`${key} must be .*at most 2147483647`));
    }
    const o = resolveClusterOptions({ workers: 1, port: 0, startWorker: start, headTimeoutMs: 2_147_483_647, shutdownTimeoutMs: 2_147_483_647, restartWindowMs: 2_147_483_647 });
    assert.equal(o.shutdownTimeoutMs, 2_147_483_647);
  });
  it('resolveClusterOptions when the drain delay is not shorter than the shutdown bound then it refuses', () => {
    invalid(() => resolveClusterOptions({ workers: 1, port: 0, startWorker: start, drainDelayMs: 9000, shutdownTimeoutMs: 9000 }), /drainDelayMs/);
  });
});

describe('resolveWorkerOptions', () => {
  it('resolveWorkerOptions when empty then the health path is /healthz', () => {
    assert.equal(resolveWorkerOptions().healthPath, '/healthz');
  });
  it('resolveWorkerOptions when an option is unknown then it refuses', () => {
    invalid(() => resolveWorkerOptions({ health: '/x' } as never), /options\.health is not an option/);
  });
});
