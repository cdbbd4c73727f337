// Friends and messages with two people in two browsers: a request and its acceptance appear
// live, messages go both ways, receipts and typing show, presence follows the other person,
// and someone who drops off the network gets every message exactly once when back.
import { expect, test } from '@playwright/test';
import { befriend, hydrated, openConversation, person, unique, type Person } from './support';

async function send(p: Person, text: string) {
  await p.page.getByLabel('Message', { exact: true }).fill(text);
  await p.page.getByLabel('Message', { exact: true }).press('Enter');
}

function bodies(p: Person, text: string | RegExp) {
  return p.page.getByTestId('messages').getByTestId('message-body').filter({ hasText: text });
}

test('request, accept, and chat live both ways with receipts, typing and presence', async ({ browser }) => {
  test.setTimeout(60_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriend(ann, bob);

  const annRow = bob.page.getByTestId('friend').filter({ hasText: ann.name });
  await expect(annRow.getByTestId('presence')).toHaveText('Online');

  await openConversation(ann, bob.name);
  await openConversation(bob, ann.name);
  await expect(ann.page.getByTestId('peer-presence')).toHaveText('Online');

  // Markup in a message is text, never HTML.
  const hello = `Hello <b>Bob</b> ${tag}`;
  await send(ann, hello);
  await expect(bodies(bob, hello)).toHaveCount(1);
  await expect(bob.page.getByTestId('messages').locator('b')).toHaveCount(0);
  await expect(bodies(ann, hello)).toHaveCount(1);
  // Bob has the conversation open: Ann sees it read.
  await expect(ann.page.getByTestId('message').filter({ hasText: hello }).getByTestId('receipt')).toHaveText('Read');

  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('Hi A');
  await expect(ann.page.getByTestId('typing')).toHaveText(`${bob.name} is typing…`);
  await bob.page.getByLabel('Message', { exact: true }).pressSequentially('nn');
  await bob.page.getByLabel('Message', { exact: true }).press('Enter');
  await expect(bodies(ann, 'Hi Ann')).toHaveCount(1);
  await expect(ann.page.getByTestId('typing')).toHaveText('');
  await expect(bob.page.getByLabel('Message', { exact: true })).toHaveValue('');

  // Too long: a clear error, and the text stays to be shortened.
  const long = 'x'.repeat(4001);
  await ann.page.getByLabel('Message', { exact: true }).fill(long);
  await ann.page.getByRole('button', { name: 'Send' }).click();
  await expect(ann.page.getByTestId('composer-error')).toContainText('at most 4000 characters');
  await expect(ann.page.getByLabel('Message', { exact: true })).toHaveValue(long);

  // Ann leaves the conversation; Bob's message raises her unread count in the title and menu.
  await ann.page.getByRole('link', { name: 'Friends' }).click();
  await expect(ann.page.getByRole('heading', { name: 'Friends', level: 1 })).toBeVisible();
  await send(bob, 'Are you there?');
  await expect(ann.page.getByTestId('nav-unread')).toContainText('1');
  await expect(ann.page).toHaveTitle(/^\(1\) Friends/);
  // Delivered to Ann's browser, not read yet.
  await expect(bob.page.getByTestId('message').filter({ hasText: 'Are you there?' }).getByTestId('receipt')).toHaveText('Delivered');
  await openConversation(ann, bob.name);
  await expect(bodies(ann, 'Are you there?')).toHaveCount(1);
  await expect(ann.page.getByTestId('nav-unread')).toHaveCount(0);
  await expect(ann.page).not.toHaveTitle(/^\(/);
  await expect(bob.page.getByTestId('message').filter({ hasText: 'Are you there?' }).getByTestId('receipt')).toHaveText('Read');

  // Bob closes his browser: Ann sees him go offline.
  await bob.close();
  await expect(ann.page.getByTestId('peer-presence')).toHaveText('Offline');
  await ann.close();
});

test('someone offline gets every message once when back, and what they wrote is sent', async ({ browser }) => {
  test.setTimeout(60_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriend(ann, bob);
  await openConversation(ann, bob.name);
  await openConversation(bob, ann.name);

  await bob.setOffline(true);
  await expect(bob.page.getByTestId('connection')).toContainText('offline');
  for (const text of ['first while away', 'second while away', 'third while away']) {
    await send(ann, text);
    await expect(bodies(ann, text)).toHaveCount(1);
  }
  await send(bob, 'written offline');
  await expect(bob.page.getByTestId('pending')).toContainText('Waiting for connection');

  await bob.setOffline(false);
  // Reconnection retries back off up to 10 s between attempts.
  await expect(bob.page.getByTestId('connection')).toHaveText('', { timeout: 15_000 });
  for (const text of ['first while away', 'second while away', 'third while away']) {
    await expect(bodies(bob, text)).toHaveCount(1);
  }
  await expect(bodies(ann, 'written offline')).toHaveCount(1);
  await expect(bodies(bob, 'written offline')).toHaveCount(1);
  await expect(bob.page.getByTestId('pending')).toHaveCount(0);
  // Nothing doubled after a reload either: the history is the same.
  await bob.page.reload();
  await hydrated(bob.page);
  await expect(bodies(bob, 'while away')).toHaveCount(3);
  await expect(bodies(bob, 'written offline')).toHaveCount(1);
  await ann.close();
  await bob.close();
});

test('a friend who is removed can read the conversation but not write', async ({ browser }) => {
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriend(ann, bob);
  await openConversation(ann, bob.name);
  await send(ann, 'before the end');
  await expect(bodies(ann, 'before the end')).toHaveCount(1);

  bob.page.once('dialog', (dialog) => dialog.accept());
  await bob.page.getByTestId('friend').filter({ hasText: ann.name }).getByRole('button', { name: 'Unfriend' }).click();
  await expect(bob.page.getByTestId('friends-notice')).toHaveText('Friend removed.');
  // Ann's open conversation turns read-only live.
  await expect(ann.page.getByTestId('read-only')).toContainText('no longer friends');
  await expect(ann.page.getByLabel('Message', { exact: true })).toHaveCount(0);
  await expect(bodies(ann, 'before the end')).toHaveCount(1);
  await ann.close();
  await bob.close();
});

test('older messages load when scrolling up', async ({ browser }) => {
  test.setTimeout(60_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriend(ann, bob);
  await openConversation(ann, bob.name);
  for (let i = 1; i <= 35; i++) {
    await send(ann, `note ${i}.`);
  }
  await expect(bodies(ann, 'note 35.')).toHaveCount(1);

  await openConversation(bob, ann.name);
  await expect(bodies(bob, 'note 35.')).toHaveCount(1);
  // The newest page only: 30 of 35.
  await expect(bob.page.getByTestId('message')).toHaveCount(30);
  await expect(bodies(bob, /^note 5\.$/)).toHaveCount(0);
  await bob.page.locator('.message-scroller').evaluate((el) => el.scrollTo(0, 0));
  await expect(bodies(bob, /^note 1\.$/)).toHaveCount(1);
  await expect(bob.page.getByTestId('message')).toHaveCount(35);
  await expect(bob.page.getByRole('button', { name: 'Load older messages' })).toHaveCount(0);
  await ann.close();
  await bob.close();
});
