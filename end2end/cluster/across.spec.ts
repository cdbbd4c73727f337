// Two instances behind haproxy (see ../cluster.config.ts): friends whose sockets are on
// different instances chat live and call each other with video; two guests on different
// instances are matched as strangers, see and hear each other through the relay, and chat;
// a code works through both; and a call goes on when the instance holding it is killed (the
// last test: one instance is left after it).
import { execSync } from 'node:child_process';
import { expect, test, type APIRequestContext, type Browser, type Page } from '@playwright/test';
import { befriendAndOpen, hydrated, person, unique } from '../tests/support';

const instances = ['http://127.0.0.1:3200', 'http://127.0.0.1:3201'];
const metricsToken = 'cluster-test-metrics-token-0123456789';

/** How many sockets of `kind` (member, guest) each instance holds, read from its metrics. */
async function socketsPerInstance(request: APIRequestContext, kind: string): Promise<number[]> {
  return Promise.all(
    instances.map(async (url) => {
      const response = await request.get(`${url}/metrics`, {
        headers: { authorization: `Bearer ${metricsToken}` },
      });
      expect(response.ok()).toBeTruthy();
      const line = (await response.text())
        .split('\n')
        .find((l) => l.startsWith(`parlor_sockets_open{kind="${kind}"}`));
      return Number(line?.split(' ')[1] ?? 0);
    }),
  );
}

/** Reloads the second page until the proxy put the two pages' sockets on different
 * instances. (Round robin over every request: a reload makes several, so every other
 * attempt first sends one more through the proxy to try the other parity.) */
async function onDifferentInstances(request: APIRequestContext, kind: string, second: Page) {
  for (let attempt = 0; attempt < 8; attempt++) {
    await expect.poll(async () => (await socketsPerInstance(request, kind)).reduce((a, b) => a + b)).toBe(2);
    const counts = await socketsPerInstance(request, kind);
    if (counts[0] === 1 && counts[1] === 1) return;
    if (attempt % 2 === 1) expect((await request.get('/readyz')).ok()).toBeTruthy();
    await second.reload();
    await hydrated(second);
  }
  throw new Error('the proxy never put the two sockets on different instances');
}

async function expectLiveVideo(page: Page) {
  const video = page.getByTestId('remote-video');
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
  const t1 = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.currentTime)).toBeGreaterThan(t1 + 0.5);
}

test('friends on two instances chat live and call each other with video', async ({ browser, request }) => {
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await onDifferentInstances(request, 'member', bob.page);

  await befriendAndOpen(ann, bob);
  // (Opening pages keeps each socket where it was: the app navigates without reloading.)
  expect(await socketsPerInstance(request, 'member')).toEqual([1, 1]);
  await ann.page.getByLabel('Message', { exact: true }).fill('Hello across instances');
  await ann.page.getByLabel('Message', { exact: true }).press('Enter');
  await expect(bob.page.getByTestId('messages').getByTestId('message-body').filter({ hasText: 'Hello across instances' })).toBeVisible();
  await bob.page.getByLabel('Message', { exact: true }).fill('Hi from the other one');
  await bob.page.getByLabel('Message', { exact: true }).press('Enter');
  await expect(ann.page.getByTestId('messages').getByTestId('message-body').filter({ hasText: 'Hi from the other one' })).toBeVisible();
  await expect(ann.page.getByTestId('peer-presence')).toHaveText('Online');

  await ann.page.getByRole('button', { name: 'Video call' }).click();
  const prompt = bob.page.getByRole('alertdialog', { name: 'Call' });
  await expect(prompt.getByTestId('call-status')).toHaveText(`${ann.name} is calling you`);
  await prompt.getByRole('button', { name: 'Accept' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expect(bob.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(ann.page);
  await expectLiveVideo(bob.page);
  await bob.page.getByRole('button', { name: 'Hang up' }).click();
  await expect(ann.page.getByTestId('call')).toBeHidden();
  await ann.close();
  await bob.close();
});

type Guest = { page: Page; close: () => Promise<void> };

async function guest(browser: Browser): Promise<Guest> {
  const context = await browser.newContext();
  const page = await context.newPage();
  await page.goto('/strangers');
  await hydrated(page);
  return { page, close: () => context.close() };
}

async function start(g: Guest) {
  await g.page.getByLabel('I am 18 or older and accept the rules').check();
  await g.page.getByRole('button', { name: 'Start' }).click();
}

test('strangers on two instances are matched, see each other through the relay and chat', async ({ browser, request }) => {
  const ann = await guest(browser);
  const bob = await guest(browser);
  await onDifferentInstances(request, 'guest', bob.page);

  await start(ann);
  await expect(ann.page.getByTestId('stranger-status')).toHaveText('Looking for someone…');
  await start(bob);
  for (const g of [ann, bob]) {
    await expect(g.page.getByTestId('stranger-shared')).toHaveText('You were matched with a random stranger.');
  }
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(ann.page);
  await expectLiveVideo(bob.page);

  await ann.page.getByRole('button', { name: 'Chat' }).click();
  await ann.page.getByLabel('Message', { exact: true }).fill('hello from one instance');
  await ann.page.getByRole('button', { name: 'Send', exact: true }).click();
  await expect(bob.page.getByTestId('call-chat')).toContainText('Stranger: hello from one instance');
  // Ann closes her tab on her instance; Bob, on the other, is told within seconds.
  await ann.close();
  await expect(bob.page.getByTestId('stranger-status')).toHaveText("The stranger's connection was lost.", { timeout: 15_000 });
  await bob.close();
});

async function expectConnected(page: Page) {
  await expect(page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
}

test('a code made through one instance is joined through the other; reloads that move a side between instances bring the call back', async ({ browser, request }) => {
  test.setTimeout(150_000);
  const visitor = async () => (await browser.newContext()).newPage();
  const ann = await visitor();
  const bob = await visitor();
  await ann.goto('/');
  await hydrated(ann);
  await ann.getByTestId('way-codes').getByRole('link', { name: 'Create a code' }).click();
  const shown = ann.getByLabel('Your code');
  await expect(shown).toHaveText(/^\d{3} \d{3} \d{4}$/);
  const code = (await shown.textContent())!.trim();
  await bob.goto('/');
  await hydrated(bob);
  await bob.getByTestId('way-codes').getByLabel('Code').fill(code);
  await bob.getByTestId('way-codes').getByRole('button', { name: 'Join' }).click();
  await expectConnected(ann);
  await expectConnected(bob);

  // The proxy sends each reload's socket to the next instance: reload Bob until the two
  // sides' sockets are on different instances (one of them then reaches its room through
  // the other instance); the call comes back each time.
  let counts: number[] = [];
  for (let attempt = 0; attempt < 6; attempt++) {
    await expect.poll(async () => (await socketsPerInstance(request, 'rendezvous')).reduce((a, b) => a + b)).toBe(2);
    counts = await socketsPerInstance(request, 'rendezvous');
    if (counts[0] === 1 && counts[1] === 1) break;
    await bob.reload();
    await hydrated(bob);
    await expectConnected(bob);
  }
  expect(counts).toEqual([1, 1]);
  await expectConnected(bob);
  await expectConnected(ann);
  await expectLiveVideo(ann);
  await expectLiveVideo(bob);
  await ann.getByRole('button', { name: 'Chat' }).click();
  await ann.getByLabel('Message').fill('Through two instances');
  await ann.getByLabel('Message').press('Enter');
  await bob.getByRole('button', { name: 'Chat' }).click();
  await expect(bob.getByTestId('call-chat')).toContainText('Your contact: Through two instances');
  await bob.getByRole('button', { name: 'Hang up' }).click();
  await expect(ann.getByTestId('code-status')).toHaveText('The call ended: they hung up.');
  await ann.context().close();
  await bob.context().close();
});

/** Kills (SIGKILL, as a crash) the instance listening on `url`'s port. */
function killInstance(url: string) {
  const port = new URL(url).port;
  const listening = execSync(`ss -ltnpH 'sport = :${port}'`).toString();
  const pid = Number(/pid=(\d+)/.exec(listening)?.[1]);
  expect(pid).toBeGreaterThan(0);
  process.kill(pid, 'SIGKILL');
}

test('a call goes on when the instance holding it is killed', async ({ browser, request }) => {
  test.setTimeout(150_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  // Ann's socket is on the instance that will hold her call.
  await expect.poll(async () => (await socketsPerInstance(request, 'member')).reduce((a, b) => a + b)).toBe(1);
  const holder = (await socketsPerInstance(request, 'member')).indexOf(1);
  const bob = await person(browser, 'Bob', tag);
  await onDifferentInstances(request, 'member', bob.page);
  await befriendAndOpen(ann, bob);
  expect((await socketsPerInstance(request, 'member'))[holder]).toBe(1);

  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Accept' }).click();
  for (const p of [ann, bob]) await expect(p.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(bob.page);

  killInstance(instances[holder]);
  // Ann's page reconnects through the proxy to the other instance, which takes the call over
  // once the killed one is taken for gone. Past the grace a side without a socket would end
  // the call: it is still on, on both pages, with live video.
  await ann.page.waitForTimeout(15_000);
  for (const p of [ann, bob]) {
    await expect(p.page.getByTestId('call-status')).toHaveText('Connected');
    await expectLiveVideo(p.page);
  }
  await ann.page.getByRole('button', { name: 'Chat' }).click();
  await ann.page.getByLabel('Chat message').fill('Still here?');
  await ann.page.getByLabel('Chat message').press('Enter');
  await bob.page.getByRole('button', { name: 'Chat' }).click();
  await expect(bob.page.getByTestId('call-chat')).toContainText(`${ann.name}: Still here?`);

  // Bob hangs up: it ends on both pages, recorded once in the conversation.
  await bob.page.getByRole('button', { name: 'Hang up' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Call ended');
  for (const p of [ann, bob]) {
    await expect(p.page.getByTestId('messages').getByTestId('message-body').filter({ hasText: /^Video call · \d+:\d\d$/ })).toHaveCount(1);
  }
  await ann.close();
  await bob.close();
});
