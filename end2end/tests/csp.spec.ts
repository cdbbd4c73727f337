// The Content-Security-Policy allows the app and nothing else: every page hydrates and works
// under it, and the browser reports no violation. (Calls run under it in calls.spec.ts.)
import { expect, test } from '@playwright/test';
import { hydrated } from './support';

test('pages hydrate under the content security policy without a single violation', async ({ page }) => {
  const violations: string[] = [];
  page.on('console', (message) => {
    if (/Content Security Policy|Refused to/i.test(message.text())) violations.push(message.text());
  });
  for (const path of ['/', '/signin', '/signup', '/status', '/no-such-page']) {
    const response = await page.goto(path);
    const policy = response?.headers()['content-security-policy'] ?? '';
    expect(policy, path).toContain("'strict-dynamic'");
    expect(policy, path).not.toContain('unsafe-inline');
    await hydrated(page);
  }
  // Client-side navigation and a server function call work too.
  await page.goto('/');
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in' }).first().click();
  await expect(page).toHaveURL(/\/signin$/);
  await page.getByLabel('Email').fill('nobody@example.com');
  await page.getByLabel('Password').fill('not a real password');
  await page.getByRole('button', { name: 'Sign in' }).click();
  await expect(page.getByRole('alert').first()).toBeVisible();
  expect(violations).toEqual([]);
});
