// Meet with a code, no accounts: one browser makes a code, another types it (or opens the
// link) and both land in a call whose signaling only they can read, and can send files.
// Wrong secrets, used and made-up codes, and reloads mid-call. Chromium's fake camera, in the
// loopback namespace.
import { expect, test, type Browser, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import { hydrated } from './support';

async function visitor(browser: Browser): Promise<Page> {
  const context = await browser.newContext();
  await context.grantPermissions(['clipboard-read', 'clipboard-write']);
  return context.newPage();
}

/** From the home page: Create a code; returns the code as shown (grouped digits). */
async function createCode(page: Page): Promise<string> {
  await page.goto('/');
  await hydrated(page);
  await page.getByTestId('way-codes').getByRole('link', { name: 'Create a code' }).click();
  const code = page.getByLabel('Your code');
  await expect(code).toHaveText(/^\d{3} \d{3} \d{4}$/);
  await expect(page.getByTestId('code-status')).toHaveText('Waiting for the other person to join…');
  return (await code.textContent())!.trim();
}

/** From the home page: types the code and presses Join. */
async function joinCode(page: Page, code: string) {
  await page.goto('/');
  await hydrated(page);
  const card = page.getByTestId('way-codes');
  await card.getByLabel('Code').fill(code);
  await card.getByRole('button', { name: 'Join' }).click();
}

/** Everything a page says to the server: request URLs and bodies, and socket frames. */
function wiretap(page: Page) {
  const said: string[] = [];
  page.on('request', (r) => said.push(`${r.method()} ${r.url()} ${r.postData() ?? ''}`));
  page.on('websocket', (ws) => ws.on('framesent', (f) => said.push(`ws ${ws.url()} ${f.payload}`)));
  return said;
}

async function expectLiveVideo(page: Page) {
  const video = page.getByTestId('remote-video');
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
  const t1 = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.currentTime)).toBeGreaterThan(t1 + 0.5);
}

async function expectConnected(page: Page) {
  await expect(page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
}

test('create a code, join it: video both ways, chat, equal verification words, hang up', async ({ browser }) => {
  test.setTimeout(90_000);
  const ann = await visitor(browser);
  const bob = await visitor(browser);
  const annSaid = wiretap(ann);
  const bobSaid = wiretap(bob);
  const code = await createCode(ann);
  // The countdown, the link with the code in its fragment, and the QR code.
  await expect(ann.getByRole('timer')).toHaveText(/Works once, for (10:00|9:\d\d) more\./);
  const link = await ann.getByRole('textbox', { name: 'Link' }).inputValue();
  expect(link).toMatch(new RegExp(`/code#${code.replaceAll(' ', '')}$`));
  await expect(ann.getByRole('img', { name: 'QR code of the link' })).toBeVisible();
  await ann.getByRole('button', { name: 'Copy code' }).click();
  await expect(ann.getByText('Copied the code.')).toBeVisible();
  expect(await ann.evaluate(() => navigator.clipboard.readText())).toBe(code);

  await joinCode(bob, code);
  await expectConnected(ann);
  await expectConnected(bob);
  await expectLiveVideo(ann);
  await expectLiveVideo(bob);

  // Both screens show the same words, derived from the key only they hold.
  const words = ann.getByLabel('Verification');
  await expect(words).toHaveText(/^[a-z]+ · [a-z]+ · [a-z]+$/);
  await expect(bob.getByLabel('Verification')).toHaveText((await words.textContent())!);

  await ann.getByRole('button', { name: 'Chat' }).click();
  await ann.getByLabel('Message').fill('Can you see me?');
  await ann.getByLabel('Message').press('Enter');
  await bob.getByRole('button', { name: 'Chat' }).click();
  await expect(bob.getByTestId('call-chat')).toContainText('Your contact: Can you see me?');
  await bob.getByLabel('Message').fill('Loud and clear');
  await bob.getByLabel('Message').press('Enter');
  await expect(ann.getByTestId('call-chat')).toContainText('Your contact: Loud and clear');

  // A file, larger than the channel may hold at once: it arrives whole, byte for byte.
  const bytes = Buffer.alloc(3 * 1024 * 1024 + 123);
  for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31 + (i >> 11)) & 0xff;
  await ann.getByLabel('Send a file').setInputFiles({ name: 'report.bin', mimeType: 'application/octet-stream', buffer: bytes });
  const save = bob.getByRole('link', { name: 'Save report.bin' });
  await expect(save).toBeVisible({ timeout: 20_000 });
  await expect(ann.getByTestId('call-file').filter({ hasText: 'report.bin' })).toContainText('Sent');
  const [download] = await Promise.all([bob.waitForEvent('download'), save.click()]);
  expect(download.suggestedFilename()).toBe('report.bin');
  const saved = fs.readFileSync((await download.path())!);
  expect(saved.length).toBe(bytes.length);
  expect(saved.equals(bytes)).toBe(true);

  // What the server saw: the room's six digits (redeemed), never the whole code; and in the
  // room's mailbox only the handshake and sealed frames, never an offer, answer or candidate.
  const digits = code.replaceAll(' ', '');
  const said = [...annSaid, ...bobSaid];
  expect(said.filter((s) => s.includes(digits))).toEqual([]);
  expect(bobSaid.filter((s) => s.includes('/rendezvous/redeem'))).toEqual([
    expect.stringMatching(new RegExp(`"code":"${digits.slice(0, 6)}"}$`)),
  ]);
  const mailbox = said.filter((s) => s.startsWith('ws ') && s.includes('/rendezvous/ws'));
  const sends = mailbox.filter((s) => s.includes('"type":"send"'));
  expect(sends.length).toBeGreaterThan(5);
  for (const frame of mailbox) {
    expect(frame).not.toMatch(/sdp|candidate|fingerprint|offer|answer/i);
  }
  const kinds = new Set(sends.map((s) => JSON.parse(s.slice(s.indexOf(' {') + 1)).payload.t));
  expect([...kinds].sort()).toEqual(['ok', 'pake', 'sealed']);

  await bob.getByRole('button', { name: 'Hang up' }).click();
  await expect(ann.getByTestId('call-status')).toHaveText('They hung up');
  await expect(ann.getByTestId('code-status')).toHaveText('The call ended: they hung up.');
  await expect(bob.getByTestId('code-status')).toHaveText('The call ended.');
  // And the way to start again is right there.
  await expect(ann.getByRole('button', { name: 'Create a code' })).toBeVisible();
  await ann.context().close();
  await bob.context().close();
});

test('the link fills the code in; a second join and a made-up code get clear errors', async ({ browser }) => {
  test.setTimeout(90_000);
  const ann = await visitor(browser);
  const bob = await visitor(browser);
  const eve = await visitor(browser);
  await createCode(ann);
  const link = await ann.getByRole('textbox', { name: 'Link' }).inputValue();

  await bob.goto(link);
  await hydrated(bob);
  // The code is taken out of the address bar, and waits in the field for Join.
  await expect(bob).toHaveURL(/\/code$/);
  const field = bob.getByRole('textbox', { name: 'Code' });
  await expect(field).toHaveValue(/^\d{3} \d{3} \d{4}$/);
  const code = await field.inputValue();
  await bob.getByRole('button', { name: 'Join' }).click();
  await expectConnected(bob);
  await expectConnected(ann);

  // The code is spent: Eve's join is refused, and says why.
  await joinCode(eve, code);
  await expect(eve.getByRole('alert').filter({ hasText: 'This code does not work' })).toContainText(
    'used already, has expired, or was never made',
  );
  // A made-up code, and one too short, are refused with words too.
  const made_up = code.startsWith('000') ? '111 111 1111' : '000 000 0000';
  await eve.getByRole('textbox', { name: 'Code' }).fill(made_up);
  await eve.getByRole('button', { name: 'Join' }).click();
  await expect(eve.getByRole('alert').filter({ hasText: 'This code does not work' })).toBeVisible();
  await eve.getByRole('textbox', { name: 'Code' }).fill('123');
  await eve.getByRole('button', { name: 'Join' }).click();
  await expect(eve.getByRole('alert').filter({ hasText: 'not complete' })).toBeVisible();
  // Ann and Bob's call is untouched.
  await expect(ann.getByTestId('call-status')).toHaveText('Connected');
  for (const page of [ann, bob, eve]) await page.context().close();
});

test('a wrong secret is reported to both, and the code is spent', async ({ browser }) => {
  test.setTimeout(60_000);
  const ann = await visitor(browser);
  const mallory = await visitor(browser);
  const code = await createCode(ann);
  // The room's digits are right (as if overheard), the secret four are not.
  const last = code.slice(-1);
  const wrong = code.slice(0, -1) + (last === '9' ? '0' : String(Number(last) + 1));
  await joinCode(mallory, wrong);
  await expect(mallory.getByTestId('code-status')).toContainText('Wrong code', { timeout: 20_000 });
  await expect(ann.getByTestId('code-status')).toContainText('Someone tried to join with a wrong code');
  // Neither is in a call.
  await expect(ann.getByTestId('call')).toHaveCount(0);
  await expect(mallory.getByTestId('call')).toHaveCount(0);
  // The right code does not work any more either.
  const bob = await visitor(browser);
  await joinCode(bob, code);
  await expect(bob.getByRole('alert').filter({ hasText: 'This code does not work' })).toBeVisible();
  for (const page of [ann, mallory, bob]) await page.context().close();
});

test('reloading either side rejoins the room and the call comes back', async ({ browser }) => {
  test.setTimeout(120_000);
  const ann = await visitor(browser);
  const bob = await visitor(browser);
  const code = await createCode(ann);
  // The creator reloads while waiting: the same code is shown again.
  await ann.reload();
  await hydrated(ann);
  await expect(ann.getByLabel('Your code')).toHaveText(code);

  await joinCode(bob, code);
  await expectConnected(ann);
  await expectConnected(bob);
  const words = (await ann.getByLabel('Verification').textContent())!;

  await bob.reload();
  await hydrated(bob);
  await expectConnected(bob);
  await expectConnected(ann);
  await expectLiveVideo(ann);
  await expectLiveVideo(bob);
  await expect(bob.getByLabel('Verification')).toHaveText(words);

  await ann.reload();
  await hydrated(ann);
  await expectConnected(ann);
  await expectConnected(bob);
  await expectLiveVideo(ann);
  await expectLiveVideo(bob);
  await expect(ann.getByLabel('Verification')).toHaveText(words);
  for (const page of [ann, bob]) await page.context().close();
});

test('a code nobody used expires with a clear message and a way to make another', async ({ browser }) => {
  const ann = await visitor(browser);
  await ann.clock.install();
  const code = await createCode(ann);
  await ann.clock.fastForward('09:00');
  await expect(ann.getByRole('timer')).toHaveText(/Works once, for (1:00|0:5\d) more\./);
  await ann.clock.fastForward('01:05');
  await expect(ann.getByTestId('code-status')).toHaveText('Your code expired before anyone used it. Make a new one.');
  await expect(ann.getByLabel('Your code')).toHaveCount(0);
  // A new code is one click away, and it is another code.
  await ann.getByRole('button', { name: 'Create a code' }).click();
  await expect(ann.getByLabel('Your code')).toHaveText(/^\d{3} \d{3} \d{4}$/);
  expect(await ann.getByLabel('Your code').textContent()).not.toBe(code);
  await ann.context().close();
});
