// "Test your connection": from the footer, one click, and the page says what this browser
// finds with the server's STUN/TURN servers and whether calls will connect, after a real
// round trip through the built-in relay (loopback only, inside the test's namespace).
import { expect, test } from '@playwright/test';
import { hydrated } from './support';

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
