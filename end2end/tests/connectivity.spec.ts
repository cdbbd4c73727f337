// "Test your connection": from the footer, one click, and the page says what this browser
// finds with the server's STUN/TURN servers and whether calls will connect, after a real
// round trip through the built-in relay (loopback only, inside the test's namespace).
import { expect, test } from '@playwright/test';
import { hydrated, signUp } from './support';

test('a guest tests the connection from the footer: relay addresses, a round trip, a verdict', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  await page.getByRole('contentinfo').getByRole('link', { name: 'Test your connection' }).click();
  await expect(page.getByRole('heading', { name: 'Test your connection', level: 1 })).toBeVisible();
  await hydrated(page);
  await page.getByRole('button', { name: 'Run the test' }).click();
  await expect(page.getByTestId('connectivity-verdict')).toHaveText(
    'Calls will connect from here: the relay works, so even strict networks are fine.',
    { timeout: 20_000 },
  );
  await expect(page.getByTestId('check-host')).toHaveText(/^\d+ found$/);
  await expect(page.getByTestId('check-relay')).toHaveText(/^\d+ found$/);
  await expect(page.getByTestId('check-round-trip')).toHaveText(/^\d+ ms$/);
  // Again, on demand.
  await page.getByRole('button', { name: 'Run it again' }).click();
  await expect(page.getByTestId('check-round-trip')).toHaveText(/^\d+ ms$/, { timeout: 20_000 });
});

test("a moderator checks the server's own relay from the same page; a guest is not offered it", async ({ page, browser }) => {
  await page.goto('/connectivity');
  await hydrated(page);
  await expect(page.getByRole('button', { name: "Check the server's relay" })).toHaveCount(0);

  // PARLOR_ADMIN_EMAILS lists this address (playwright.config.ts).
  const context = await browser.newContext();
  const moderator = await context.newPage();
  await signUp(moderator, 'operator@example.com', 'Otto');
  await moderator.goto('/connectivity');
  await hydrated(moderator);
  await moderator.getByRole('button', { name: "Check the server's relay" }).click();
  await expect(moderator.getByTestId('server-relay-verdict')).toHaveText(
    /^The server's relay works: a datagram went through it in \d+ ms\.$/,
    { timeout: 15_000 },
  );
  await context.close();
});
