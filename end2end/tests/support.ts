// What several specs do the same way: unique accounts, waiting for hydration, signing up,
// people in browsers of their own, and making them friends.
import { expect, type Browser, type BrowserContextOptions, type Page } from '@playwright/test';

export const PASSWORD = 'correct horse battery';

/** A suffix that keeps names and emails unique across tests and runs. */
export function unique() {
  return `${Date.now().toString(36)}${Math.random().toString(36).slice(2, 6)}`;
}

export function uniqueEmail(who: string) {
  return `${who}-${unique()}@example.com`;
}

export async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

export async function signUp(page: Page, email: string, name: string, password = PASSWORD) {
  await page.goto('/signup');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Display name').fill(name);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.getByTestId('signed-in-name')).toHaveText(name);
}

/** Someone signed up in a browser context of their own. */
export type Person = {
  page: Page;
  name: string;
  close: () => Promise<void>;
  setOffline: (offline: boolean) => Promise<void>;
};

export async function person(
  browser: Browser,
  who: string,
  tag: string,
  options?: BrowserContextOptions,
): Promise<Person> {
  const context = await browser.newContext(options);
  const page = await context.newPage();
  const name = `${who} ${tag}`;
  await signUp(page, uniqueEmail(who.toLowerCase()), name);
  return { page, name, close: () => context.close(), setOffline: (o) => context.setOffline(o) };
}

export async function openFriends(p: Person) {
  await p.page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Friends' }).click();
  await expect(p.page.getByRole('heading', { name: 'Friends', level: 1 })).toBeVisible();
  await hydrated(p.page);
}

/** `a` finds `b` and asks; `b`, already on the friends page, sees it live and accepts. */
export async function befriend(a: Person, b: Person) {
  await openFriends(a);
  await openFriends(b);
  await a.page.getByLabel('Name or exact email').fill(b.name);
  await a.page.getByRole('button', { name: 'Search' }).click();
  const row = a.page.getByTestId('search-results').getByTestId('person').filter({ hasText: b.name });
  await row.getByRole('button', { name: 'Add friend' }).click();
  await expect(a.page.getByTestId('friends-notice')).toHaveText('Friend request sent.');
  await expect(a.page.getByTestId('outgoing')).toContainText(b.name);

  const request = b.page.getByTestId('incoming').getByTestId('request').filter({ hasText: a.name });
  await request.getByRole('button', { name: 'Accept' }).click();
  await expect(b.page.getByTestId('friends').getByTestId('friend').filter({ hasText: a.name })).toBeVisible();
  // The sender's page updates without a reload.
  await expect(a.page.getByTestId('friends').getByTestId('friend').filter({ hasText: b.name })).toBeVisible();
  await expect(a.page.getByTestId('outgoing')).toHaveCount(0);
}

/** From the friends page, opens the conversation with `withName`. */
export async function openConversation(p: Person, withName: string) {
  await p.page.getByTestId('friend').filter({ hasText: withName }).getByRole('link', { name: 'Message', exact: true }).click();
  await expect(p.page).toHaveURL(/\/messages\/\d+$/);
  await expect(p.page.getByTestId('conversation-title')).toHaveText(withName);
}

/** Makes `a` and `b` friends and opens their conversation on both sides. */
export async function befriendAndOpen(a: Person, b: Person) {
  await befriend(a, b);
  await openConversation(a, b.name);
  await openConversation(b, a.name);
}
