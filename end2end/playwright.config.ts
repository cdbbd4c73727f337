// Playwright drives Debian's Chromium (never a downloaded browser) against the real server,
// started fresh with an empty data directory. Run it through `scripts/e2e.sh`, which puts the
// whole run inside a network namespace that has only loopback.
import { defineConfig } from '@playwright/test';
import { chromiumArgs } from './chromium';
import * as fs from 'node:fs';
import * as os from 'node:os';
import * as path from 'node:path';

const port = Number(process.env.PARLOR_E2E_PORT ?? 3100);
const baseURL = `http://127.0.0.1:${port}`;
// The stand-in for Google's identity provider (testkit), on the next port.
const idp = `http://127.0.0.1:${port + 1}`;
const dataDir =
  process.env.PARLOR_E2E_DATA_DIR ?? fs.mkdtempSync(path.join(os.tmpdir(), 'parlor-e2e-'));

export default defineConfig({
  testDir: './tests',
  timeout: 30_000,
  expect: { timeout: 10_000 },
  fullyParallel: true,
  workers: 2,
  forbidOnly: true,
  reporter: [['list']],
  use: {
    baseURL,
    trace: 'retain-on-failure',
    // The call features need these; granting them here keeps their tests free of set-up.
    permissions: ['camera', 'microphone'],
    launchOptions: {
      executablePath: process.env.PARLOR_E2E_CHROMIUM ?? '/usr/bin/chromium',
      args: [
        ...chromiumArgs,
        // In a loopback-only namespace, WebRTC gathers no candidates without this.
        '--allow-loopback-in-peer-connection',
      ],
    },
  },
  webServer: [
    {
      command: `${process.env.PARLOR_E2E_IDP ?? '../target/debug/stand-in-idp'} 127.0.0.1:${port + 1}`,
      port: port + 1,
      reuseExistingServer: false,
      timeout: 30_000,
    },
    {
      command: process.env.PARLOR_E2E_SERVER ?? '../target/debug/parlor',
      url: `${baseURL}/readyz`,
      reuseExistingServer: false,
      timeout: 60_000,
      stdout: 'pipe',
      stderr: 'pipe',
      env: {
        PARLOR_ADDR: `127.0.0.1:${port}`,
        // The built-in TURN server, beside it (not on the default 3478 another run may hold).
        PARLOR_TURN_ADDR: `127.0.0.1:${port + 2}`,
        PARLOR_PUBLIC_URL: baseURL,
        PARLOR_DATA_DIR: dataDir,
        PARLOR_LOG: process.env.PARLOR_LOG ?? 'warn',
        LEPTOS_SITE_ROOT: process.env.PARLOR_E2E_SITE_ROOT ?? '../target/site',
        // Every test signs in from 127.0.0.1: the per-address limit is tested in Rust.
        PARLOR_AUTH_ATTEMPTS_PER_IP: '10000',
        // Likewise codes: the code tests make, redeem and miss codes from one address.
        PARLOR_CODES_PER_IP_PER_MIN: '1000',
        PARLOR_REDEEMS_PER_IP_PER_MIN: '1000',
        PARLOR_RENDEZVOUS_UPGRADES_PER_IP_PER_MIN: '1000',
        // A short heartbeat: a connection cut by a test is noticed within seconds.
        PARLOR_WS_HEARTBEAT_MS: '2000',
        // Unanswered calls give up sooner than the default 30 s.
        PARLOR_CALL_RING_SECS: '6',
        // The strangers test's moderator.
        PARLOR_ADMIN_EMAILS: 'moderator@example.com,operator@example.com',
        // Tests that need clients on different addresses send X-Forwarded-For.
        PARLOR_TRUSTED_PROXIES: '127.0.0.1',
        PARLOR_GOOGLE_CLIENT_ID: 'parlor-test-client',
        PARLOR_GOOGLE_CLIENT_SECRET: 'parlor-test-secret',
        PARLOR_GOOGLE_AUTH_URL: `${idp}/authorize`,
        PARLOR_GOOGLE_TOKEN_URL: `${idp}/token`,
        PARLOR_GOOGLE_USERINFO_URL: `${idp}/userinfo`,
      },
    },
  ],
});
