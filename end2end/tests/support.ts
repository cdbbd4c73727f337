// What several specs do the same way: unique accounts, waiting for hydration, signing up.
import { expect, type Page } from '@playwright/test';

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
