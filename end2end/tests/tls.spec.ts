// Parlor over HTTPS (PARLOR_TLS_CERT + PARLOR_TLS_KEY), as a browser meets it: this spec
// starts its own instance with a certificate it makes (openssl), and two people sign up,
// become friends and talk live over the secure socket.
import { expect, test } from '@playwright/test';
import { spawn, execFileSync, type ChildProcess } from 'node:child_process';
import * as fs from 'node:fs';
import * as https from 'node:https';
import * as os from 'node:os';
import * as path from 'node:path';
import { befriend, openConversation, person, unique } from './support';

const port = Number(process.env.PARLOR_E2E_PORT ?? 3100) + 7;
const httpsURL = `https://127.0.0.1:${port}`;

test.describe.configure({ mode: 'serial' });

let server: ChildProcess | undefined;
let dir = '';

/** Whether the instance answers `/readyz` over https (its certificate is this spec's own). */
function ready(): Promise<boolean> {
  return new Promise((resolve) => {
    const request = https.get(`${httpsURL}/readyz`, { rejectUnauthorized: false }, (response) => {
      response.resume();
      resolve(response.statusCode === 200);
    });
    request.on('error', () => resolve(false));
  });
}

test.beforeAll(async () => {
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'parlor-tls-'));
  execFileSync('openssl', [
    'req', '-x509', '-newkey', 'rsa:2048', '-nodes', '-days', '1',
    '-keyout', path.join(dir, 'key.pem'), '-out', path.join(dir, 'cert.pem'),
    '-subj', '/CN=127.0.0.1', '-addext', 'subjectAltName=IP:127.0.0.1',
  ], { stdio: 'ignore' });
  server = spawn(process.env.PARLOR_E2E_SERVER ?? '../target/debug/parlor', [], {
    env: {
      PATH: process.env.PATH ?? '',
      PARLOR_ADDR: `127.0.0.1:${port}`,
      PARLOR_PUBLIC_URL: httpsURL,
      PARLOR_TLS_CERT: path.join(dir, 'cert.pem'),
      PARLOR_TLS_KEY: path.join(dir, 'key.pem'),
      PARLOR_TURN: 'off',
      PARLOR_DATA_DIR: path.join(dir, 'data'),
      PARLOR_LOG: 'warn',
      PARLOR_AUTH_ATTEMPTS_PER_IP: '10000',
      LEPTOS_SITE_ROOT: process.env.PARLOR_E2E_SITE_ROOT ?? '../target/site',
    },
    // Its warnings and errors show in the test's output.
    stdio: ['ignore', 'ignore', 'inherit'],
  });
  await expect
    .poll(ready, { timeout: 60_000, message: 'the https instance became ready' })
    .toBe(true);
});

test.afterAll(async () => {
  server?.kill('SIGTERM');
  fs.rmSync(dir, { recursive: true, force: true });
});

test('two people sign up, become friends and talk live over https', async ({ browser }) => {
  test.setTimeout(60_000);
  const tag = unique();
  const options = { baseURL: httpsURL, ignoreHTTPSErrors: true };
  const ann = await person(browser, 'Ann', tag, options);
  const bob = await person(browser, 'Bob', tag, options);
  // The session cookie is the https kind: `__Host-` and Secure.
  const cookies = await ann.page.context().cookies(httpsURL);
  const session = cookies.find((c) => c.name === '__Host-parlor_session');
  expect(session?.secure).toBe(true);

  await befriend(ann, bob);
  await openConversation(ann, bob.name);
  await openConversation(bob, ann.name);
  // Presence and the message arrive over the socket (wss://), without a reload.
  await expect(ann.page.getByTestId('peer-presence')).toHaveText('Online');
  const hello = `Hello over TLS ${tag}`;
  await ann.page.getByLabel('Message', { exact: true }).fill(hello);
  await ann.page.getByLabel('Message', { exact: true }).press('Enter');
  await expect(
    bob.page.getByTestId('messages').getByTestId('message-body').filter({ hasText: hello }),
  ).toHaveCount(1);
  await ann.close();
  await bob.close();
});
