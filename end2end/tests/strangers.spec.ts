// Strangers, as guests in browsers of their own (Chromium's fake camera, loopback only):
// the rules checkbox, interests shown when shared, live video both ways through the relay,
// chat both ways shown as text, Next re-matching with the one waiting, a closed tab
// announced, a report sent; and no frame a guest receives carries anything but relay
// candidates with blanked related addresses.
import { expect, test, type Browser, type Page } from '@playwright/test';
import { hydrated, openFriends, person, signUp, unique } from './support';

// One after another: guests of one test must not be matched with another test's.
test.describe.configure({ mode: 'serial' });

type Guest = { page: Page; received: string[]; close: () => Promise<void> };

/** A guest in a browser of its own; `from`: the client address a proxy the server trusts
 * (loopback, in this suite's configuration) names for every request and socket. */
async function guest(browser: Browser, from?: string): Promise<Guest> {
  const context = await browser.newContext(from ? { extraHTTPHeaders: { 'X-Forwarded-For': from } } : {});
  const page = await context.newPage();
  const received: string[] = [];
  page.on('websocket', (ws) => ws.on('framereceived', (f) => received.push(String(f.payload))));
  return { page, received, close: () => context.close() };
}

/** From the home page to the strangers page, rules accepted, interests typed, Start. */
async function startLooking(g: Guest, interests: string) {
  await g.page.goto('/');
  await hydrated(g.page);
  await g.page.getByTestId('way-strangers').getByRole('link', { name: 'Talk to a stranger' }).click();
  await expect(g.page.getByRole('heading', { name: 'Talk to a stranger', level: 1 })).toBeVisible();
  const start = g.page.getByRole('button', { name: 'Start' });
  await expect(start).toBeDisabled();
  // Before anyone sees them: their own camera, and a microphone meter that moves.
  const preview = g.page.getByTestId('stranger-preview');
  await expect.poll(() => preview.evaluate((v: HTMLVideoElement) => v.videoWidth)).toBeGreaterThan(0);
  await expect.poll(() => g.page.getByTestId('mic-level').evaluate((m: HTMLMeterElement) => m.value)).toBeGreaterThan(0);
  await g.page.getByLabel('I am 18 or older and accept the rules').check();
  await g.page.getByLabel(/^Interests/).fill(interests);
  await expect(start).toBeEnabled();
  await start.click();
}

async function expectLiveVideo(page: Page) {
  const video = page.getByTestId('remote-video');
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
  const t1 = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.currentTime)).toBeGreaterThan(t1 + 0.5);
}

/** Every ICE candidate in what a guest received is a relay one without its related address. */
function expectOnlyRelayCandidates(received: string[]) {
  const candidates = received.join('\n').match(/candidate:[^"\\]*/g) ?? [];
  expect(candidates.length).toBeGreaterThan(0);
  for (const line of candidates) {
    expect(line).toContain(' typ relay');
    expect(line).not.toMatch(/raddr (?!0\.0\.0\.0 )/);
  }
}

async function say(page: Page, text: string) {
  const chat = page.getByRole('button', { name: 'Chat' });
  if ((await chat.getAttribute('aria-expanded')) !== 'true') await chat.click();
  await page.getByLabel('Message', { exact: true }).fill(text);
  await page.getByRole('button', { name: 'Send', exact: true }).click();
}

test('three guests: matched by a shared interest, video and chat both ways, next, a closed tab, a report', async ({ browser }) => {
  test.setTimeout(120_000);
  const ann = await guest(browser);
  const bob = await guest(browser);
  const cat = await guest(browser);

  await startLooking(ann, 'Chess');
  await expect(ann.page.getByTestId('stranger-status')).toHaveText('Looking for someone who likes chess…');
  await startLooking(bob, 'jazz, chess');

  for (const g of [ann, bob]) {
    await expect(g.page.getByTestId('call')).toBeVisible();
    await expect(g.page.getByTestId('stranger-shared')).toHaveText('You both like: chess');
    // The page's preview gave the camera back: the call window shows it now.
    await expect(g.page.getByTestId('stranger-preview')).toBeHidden();
  }
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(ann.page);
  await expectLiveVideo(bob.page);

  // Chat both ways, markup shown as text.
  await say(ann.page, '<b>hello</b> from Ann');
  const bobChat = bob.page.getByTestId('call-chat');
  await expect(bobChat).toContainText('Stranger: <b>hello</b> from Ann');
  await expect(bobChat.locator('b')).toHaveCount(0); // shown as text, not markup
  await say(bob.page, 'hi Ann');
  await expect(ann.page.getByTestId('call-chat')).toContainText('Stranger: hi Ann');

  // Ann reports Bob, with the chat attached.
  await ann.page.getByRole('button', { name: 'Report' }).click();
  await ann.page.getByLabel('Reason').selectOption('spam');
  await ann.page.getByLabel('Attach the last chat lines').check();
  await ann.page.getByRole('button', { name: 'Send report' }).click();
  await expect(ann.page.getByTestId('report-note')).toHaveText(/Report sent/);

  // Cat waits; Ann presses Next: Bob is told and looks again; Ann, who gave an interest,
  // meets Cat (who gave none) once her 8 s wait for a shared one is over.
  await startLooking(cat, '');
  await expect(cat.page.getByTestId('stranger-status')).toHaveText('Looking for someone…');
  await ann.page.getByRole('button', { name: 'Next' }).click();
  await expect(bob.page.getByTestId('stranger-notice')).toHaveText('The stranger moved on.');
  await expect(bob.page.getByTestId('stranger-status')).toHaveText('Looking for someone who likes jazz, chess…');
  await expect(ann.page.getByTestId('stranger-status')).toHaveText('Looking for someone who likes chess…');
  await expect(cat.page.getByTestId('stranger-shared')).toHaveText('You were matched with a random stranger.', { timeout: 20_000 });
  await expect(ann.page.getByTestId('stranger-shared')).toHaveText('You were matched with a random stranger.');
  await expectLiveVideo(cat.page);
  await expectLiveVideo(ann.page);

  // Cat closes the tab: Ann is told within seconds and may look again.
  await cat.close();
  await expect(ann.page.getByTestId('stranger-status')).toHaveText("The stranger's connection was lost.", { timeout: 15_000 });
  await expect(ann.page.getByRole('button', { name: 'Look again' })).toBeEnabled();

  for (const g of [ann, bob]) expectOnlyRelayCandidates(g.received);
  await ann.close();
  await bob.close();
});

test('the rules must be accepted, and bad interests are refused with a clear error', async ({ browser }) => {
  const g = await guest(browser);
  await g.page.goto('/strangers');
  await hydrated(g.page);
  await expect(g.page.getByRole('button', { name: 'Start' })).toBeDisabled();
  await g.page.getByLabel('I am 18 or older and accept the rules').check();
  await g.page.getByLabel(/^Interests/).fill('x'.repeat(31));
  await g.page.getByRole('button', { name: 'Start' }).click();
  await expect(g.page.getByTestId('stranger-error')).toContainText('at most 30 characters');
  // What was typed is kept.
  await expect(g.page.getByLabel(/^Interests/)).toHaveValue('x'.repeat(31));
  await g.page.getByLabel(/^Interests/).fill('a,b,c,d,e,f,g,h,i,j,k');
  await g.page.getByRole('button', { name: 'Start' }).click();
  await expect(g.page.getByTestId('stranger-error')).toContainText('at most 10 interests');
  await g.close();
});

/** On the strangers page already: rules accepted, text only, interests, Start. */
async function startTextOnly(page: Page, interests: string) {
  await page.goto('/strangers');
  await hydrated(page);
  await page.getByLabel('I am 18 or older and accept the rules').check();
  await page.getByLabel('Text only (no camera or microphone)').check();
  await expect(page.getByTestId('stranger-preview')).toBeHidden();
  await page.getByLabel(/^Interests/).fill(interests);
  await page.getByRole('button', { name: 'Start' }).click();
}

/** On the strangers page already: rules accepted, interests, Start (with video). */
async function startVideo(page: Page, interests: string) {
  await page.goto('/strangers');
  await hydrated(page);
  await page.getByLabel('I am 18 or older and accept the rules').check();
  await page.getByLabel(/^Interests/).fill(interests);
  await page.getByRole('button', { name: 'Start' }).click();
}

test('four guests: two pairs by interest with live video, chat stays in its pair, next never re-matches the last partner', async ({ browser }) => {
  test.setTimeout(120_000);
  const [ann, bob, cat, dan] = await Promise.all([guest(browser), guest(browser), guest(browser), guest(browser)]);
  await startVideo(ann.page, 'chess');
  await startVideo(bob.page, 'jazz');
  await startVideo(cat.page, 'chess');
  await startVideo(dan.page, 'jazz');
  for (const [g, shared] of [[ann, 'chess'], [cat, 'chess'], [bob, 'jazz'], [dan, 'jazz']] as const) {
    await expect(g.page.getByTestId('call')).toBeVisible();
    await expect(g.page.getByTestId('stranger-shared')).toHaveText(`You both like: ${shared}`);
  }
  // Two relayed video calls at once, each live both ways.
  await Promise.all([ann, bob, cat, dan].map((g) => expectLiveVideo(g.page)));
  await say(ann.page, 'chess <i>player</i> here');
  await say(dan.page, 'jazz fan here');
  await expect(cat.page.getByTestId('call-chat')).toContainText('Stranger: chess <i>player</i> here');
  await expect(bob.page.getByTestId('call-chat')).toContainText('Stranger: jazz fan here');
  await expect(bob.page.getByTestId('call-chat')).not.toContainText('chess');
  await expect(cat.page.getByTestId('call-chat')).not.toContainText('jazz');

  // Ann and Dan both press Next at once: everybody looks again, and after the 8 s wait for
  // a shared interest each meets someone from the other pair, never the last partner.
  await Promise.all([
    ann.page.getByRole('button', { name: 'Next' }).click(),
    dan.page.getByRole('button', { name: 'Next' }).click(),
  ]);
  const partners = new Map<Guest, string>();
  for (const g of [ann, bob, cat, dan]) {
    await expect(g.page.getByTestId('stranger-shared')).toHaveText('You were matched with a random stranger.', { timeout: 25_000 });
  }
  // Who is with whom: each says their name and the other reads it.
  const names = new Map<Guest, string>([[ann, 'Ann'], [bob, 'Bob'], [cat, 'Cat'], [dan, 'Dan']]);
  for (const [g, name] of names) await say(g.page, `I am ${name}`);
  for (const g of [ann, bob, cat, dan]) {
    const chat = g.page.getByTestId('call-chat');
    await expect(chat).toContainText(/Stranger: I am (Ann|Bob|Cat|Dan)/);
    const other = /Stranger: I am (Ann|Bob|Cat|Dan)/.exec((await chat.textContent()) ?? '')![1];
    partners.set(g, other);
  }
  expect(partners.get(ann)).not.toBe('Cat');
  expect(partners.get(bob)).not.toBe('Dan');
  expect(partners.get(cat)).not.toBe('Ann');
  expect(partners.get(dan)).not.toBe('Bob');
  for (const [g, other] of partners) expect(partners.get([...names].find(([, n]) => n === other)![0])).toBe(names.get(g));
  for (const g of [ann, bob, cat, dan]) {
    await expect(g.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
    expectOnlyRelayCandidates(g.received);
  }
  for (const g of [ann, bob, cat, dan]) await g.close();
});

test('two signed-in people in text-only mode stay anonymous and become friends only when both press Add as friend', async ({ browser }) => {
  test.setTimeout(60_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await startTextOnly(ann.page, `pen pals ${tag}`.slice(0, 30));
  await startTextOnly(bob.page, `pen pals ${tag}`.slice(0, 30));
  for (const p of [ann, bob]) {
    await expect(p.page.getByTestId('call')).toBeVisible();
    // Text only: no camera or microphone controls, the chat open at once.
    await expect(p.page.getByRole('button', { name: 'Mute' })).toHaveCount(0);
    await expect(p.page.getByLabel('Message', { exact: true })).toBeVisible();
  }
  await say(ann.page, 'hello there');
  await expect(bob.page.getByTestId('call-chat')).toContainText('Stranger: hello there');
  await expect(bob.page.getByTestId('call')).not.toContainText(ann.name);
  await expect(ann.page.getByTestId('call')).not.toContainText(bob.name);

  await ann.page.getByRole('button', { name: 'Add as friend' }).click();
  await expect(ann.page.getByTestId('stranger-friend')).toHaveText('Friend request sent: if the stranger adds you too, you become friends.');
  await expect(ann.page.getByRole('button', { name: 'Asked to be friends' })).toBeVisible();
  await expect(bob.page.getByTestId('stranger-friend')).toHaveText('The stranger would like to be friends: press Add as friend to accept.');
  await bob.page.getByRole('button', { name: 'Add as friend' }).click();
  await expect(ann.page.getByTestId('stranger-friend')).toHaveText(`You are friends with ${bob.name} now: find them under Friends.`);
  await expect(bob.page.getByTestId('stranger-friend')).toHaveText(`You are friends with ${ann.name} now: find them under Friends.`);

  await ann.page.getByRole('button', { name: 'Stop' }).click();
  await expect(bob.page.getByTestId('stranger-status')).toHaveText('The stranger left.');
  await openFriends(ann);
  await expect(ann.page.getByTestId('friend')).toContainText(bob.name);
  await ann.close();
  await bob.close();
});

test('report, a moderator bans from the moderation page, the banned guest is told and cannot start again', async ({ browser }) => {
  test.setTimeout(90_000);
  // From addresses of their own, so the ban on Eve's covers nobody else.
  const eve = await guest(browser, '198.51.100.7');
  const ann = await guest(browser, '198.51.100.8');
  await startLooking(eve, '');
  await startLooking(ann, '');
  for (const g of [eve, ann]) await expect(g.page.getByTestId('call')).toBeVisible();
  await say(eve.page, '<b>cheap</b> pills');
  await expect(ann.page.getByTestId('call-chat')).toContainText('Stranger: <b>cheap</b> pills');
  await ann.page.getByRole('button', { name: 'Report' }).click();
  await ann.page.getByLabel('Reason').selectOption('spam');
  await ann.page.getByLabel(/^Note/).fill('Kept <i>advertising</i>');
  await ann.page.getByLabel('Attach the last chat lines').check();
  await ann.page.getByRole('button', { name: 'Send report' }).click();
  await expect(ann.page.getByTestId('report-note')).toHaveText(/Report sent/);

  // Guests have no moderation link.
  await expect(ann.page.getByRole('link', { name: 'Moderation' })).toHaveCount(0);

  // The moderator finds the report through the menu.
  const modContext = await browser.newContext();
  const moderator = await modContext.newPage();
  await signUp(moderator, 'moderator@example.com', 'Mona');
  await moderator.getByRole('link', { name: 'Moderation' }).click();
  await expect(moderator.getByRole('heading', { name: 'Moderation', level: 1 })).toBeVisible();
  const report = moderator.getByTestId('report').first();
  await expect(report).toContainText('Spam or advertising');
  const id = /^Report (\d+) /.exec((await report.getByRole('heading').textContent()) ?? '')?.[1];
  expect(id).toBeTruthy();
  await expect(report.getByTestId('report-about')).toContainText(/About Guest [0-9a-f]{8} · reported by 1 person · 1 open report$/);
  await expect(report).toContainText('Kept <i>advertising</i>');
  await expect(report).toContainText('Reported: <b>cheap</b> pills');
  await expect(report.locator('b, i')).toHaveCount(0); // shown as text, not markup
  await report.getByLabel('Ban for').selectOption({ label: '1 week' });
  await report.getByRole('button', { name: 'Ban' }).click();
  await expect(moderator.getByTestId('moderation-notice')).toHaveText(/^Banned until .+ \(report \d+\)\.$/);
  // Decided: it leaves the open reports, and the log says who did what.
  await expect(moderator.getByRole('heading', { name: new RegExp(`^Report ${id} `) })).toHaveCount(0);
  await expect(moderator.getByTestId('moderation-log')).toContainText(new RegExp(`Mona banned Guest [0-9a-f]{8} until .+ \\(report ${id}\\)`));

  // Eve's match ended at once and she is told until when; Ann hears the stranger left.
  await expect(eve.page.getByTestId('call')).toBeHidden();
  await expect(eve.page.getByTestId('stranger-error')).toHaveText(/^You are banned from talking to strangers until .+\.$/);
  await expect(ann.page.getByTestId('stranger-status')).toHaveText('The stranger left.');
  await expect(ann.page.getByTestId('stranger-error')).toHaveText('');
  // Starting again is refused the same way.
  await eve.page.reload();
  await hydrated(eve.page);
  await eve.page.getByLabel('I am 18 or older and accept the rules').check();
  await eve.page.getByRole('button', { name: 'Start' }).click();
  await expect(eve.page.getByTestId('stranger-error')).toHaveText(/^You are banned from talking to strangers until .+\.$/);
  await expect(eve.page.getByTestId('stranger-status')).toHaveText('');

  // The moderator changes their mind: the decided report, Lift the ban; Eve may look again.
  await moderator.getByLabel('Show decided reports too').check();
  const decided = moderator.getByTestId('report').filter({ has: moderator.getByRole('heading', { name: new RegExp(`^Report ${id} `) }) });
  await expect(decided).toContainText('Decided: banned.');
  await decided.getByRole('button', { name: 'Lift the ban' }).click();
  await expect(moderator.getByTestId('moderation-notice')).toHaveText(`Ban lifted (report ${id}).`);
  await expect(moderator.getByTestId('moderation-log')).toContainText(new RegExp(`Mona lifted the ban on Guest [0-9a-f]{8} \\(report ${id}\\)`));
  await eve.page.getByRole('button', { name: 'Start' }).click();
  await expect(eve.page.getByTestId('stranger-status')).toHaveText('Looking for someone…');
  await expect(eve.page.getByTestId('stranger-error')).toHaveText('');
  expectOnlyRelayCandidates(ann.received);
  for (const g of [eve, ann]) await g.close();
  await modContext.close();
});
