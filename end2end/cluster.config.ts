// Two Parlor instances on one PostgreSQL and one Redis behind a real haproxy
// (`scripts/e2e-cluster.sh` starts PostgreSQL and runs this inside a loopback-only network
// namespace): the browsers only ever talk to the proxy, which spreads requests and sockets
// over the instances without stickiness.
import { defineConfig } from '@playwright/test';
import { chromiumArgs } from './chromium';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const proxyURL = 'http://127.0.0.1:3210';
// The spec (cluster/across.spec.ts) reads the instances' metrics with this token.
const metricsToken = 'cluster-test-metrics-token-0123456789';
const redisPort = 3220;
const server = process.env.PARLOR_E2E_SERVER ?? '../target/debug/parlor';
const database = process.env.PARLOR_E2E_DATABASE_URL ?? '';

function instance(n: number) {
  const port = 3200 + n;
  return {
    command: server,
    url: `http://127.0.0.1:${port}/readyz`,
    reuseExistingServer: false,
    timeout: 60_000,
    stdout: 'pipe' as const,
    stderr: 'pipe' as const,
    env: {
      PARLOR_ADDR: `127.0.0.1:${port}`,
      PARLOR_TURN_ADDR: `127.0.0.1:${port + 2}`,
      PARLOR_PUBLIC_URL: proxyURL,
      PARLOR_DATA_DIR: fs.mkdtempSync(path.join(os.tmpdir(), 'parlor-cluster-')),
      PARLOR_DATABASE_URL: database,
      PARLOR_REDIS_URL: `redis://127.0.0.1:${redisPort}`,
      // Every instance signs and reads the same cookies.
      PARLOR_SESSION_SECRET: 'cluster-test-session-secret-0123456789abcdef',
      PARLOR_METRICS_TOKEN: metricsToken,
      PARLOR_LOG: process.env.PARLOR_LOG ?? 'warn',
      LEPTOS_SITE_ROOT: process.env.PARLOR_E2E_SITE_ROOT ?? '../target/site',
      PARLOR_AUTH_ATTEMPTS_PER_IP: '10000',
      PARLOR_WS_HEARTBEAT_MS: '2000',
      PARLOR_TRUSTED_PROXIES: '127.0.0.1',
      // Quicker than by default, for the test that kills the instance holding a call: it is
      // taken for gone 3 s after its last heartbeat, and a call waits 6 s for a side.
      PARLOR_INSTANCE_TIMEOUT_SECS: '3',
      PARLOR_CALL_GRACE_SECS: '6',
    },
  };
}

export default defineConfig({
  testDir: './cluster',
  timeout: 120_000,
  expect: { timeout: 15_000 },
  // Strangers of one test must not meet another test's.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  reporter: [['list']],
  use: {
    baseURL: proxyURL,
    trace: 'retain-on-failure',
    permissions: ['camera', 'microphone'],
    launchOptions: {
      executablePath: process.env.PARLOR_E2E_CHROMIUM ?? '/usr/bin/chromium',
      args: [...chromiumArgs, '--allow-loopback-in-peer-connection'],
    },
  },
  webServer: [
    {
      command: `redis-server --bind 127.0.0.1 --port ${redisPort} --save '' --appendonly no --loglevel warning`,
      port: redisPort,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    instance(0),
    instance(1),
    {
      command: 'haproxy -db -f cluster/haproxy.cfg',
      url: `${proxyURL}/readyz`,
      reuseExistingServer: false,
      timeout: 30_000,
    },
  ],
});
