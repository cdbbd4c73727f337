// The app shell: server rendering, hydration, client-side navigation, a server function that
// reads SQLite, the 404 page and keyboard access.
import { expect, test, type Page } from '@playwright/test';

async function hydrated(page: Page) {
  await expect(page.locator('body')).toHaveAttribute('data-hydrated', 'true');
}

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the server renders the page', async ({ page }) => {
    await page.goto('/');
    await expect(page.getByRole('heading', { level: 1 })).toHaveText('Video chat you host yourself');
    await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();
    await expect(page.getByRole('main')).toContainText('Three ways to meet');
    await expect(page).toHaveTitle('Parlor');
    // Nothing ran in the browser: the content above came from the server.
    await expect(page.locator('body')).not.toHaveAttribute('data-hydrated', /.*/);
  });

  test('the status page is server-rendered with the health the database gave', async ({ page }) => {
    await page.goto('/status');
    await expect(page.getByTestId('server-status')).toHaveText(/All systems working/);
    await expect(page.getByText('SQLite')).toHaveCount(0);
  });
});

test('the page hydrates', async ({ page }) => {
  const errors: string[] = [];
  page.on('pageerror', (e) => errors.push(e.message));
  page.on('console', (m) => m.type() === 'error' && errors.push(m.text()));
  await page.goto('/');
  await hydrated(page);
  expect(errors).toEqual([]);
});

test('navigation stays client-side and the status page checks health through a server function', async ({
  page,
}) => {
  await page.goto('/');
  await hydrated(page);
  // A full page load would wipe this.
  await page.evaluate(() => ((window as any).parlorNoReload = true));

  const serverFn = page.waitForResponse(
    (r) => r.url().includes('/api/status') && r.request().method() === 'POST',
  );
  // An operator's page: linked from the footer, not the main navigation.
  await expect(page.getByRole('navigation', { name: 'Main' }).getByRole('link', { name: 'Status' })).toHaveCount(0);
  await page.getByRole('contentinfo').getByRole('link', { name: 'Server status' }).click();
  const response = await serverFn;
  expect(response.status()).toBe(200);
  const body = await response.json();
  // Health, and nothing an attacker could use (no version, engine or schema).
  expect(Object.keys(body).sort()).toEqual(['checked_at', 'status']);
  expect(body.status).toBe('ok');

  await expect(page).toHaveURL(/\/status$/);
  await expect(page).toHaveTitle('Status · Parlor');
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Server status');
  await expect(page.getByRole('status').filter({ hasText: 'All systems working' })).toBeVisible();
  await expect(page.locator('main time')).toHaveAttribute('datetime', body.checked_at);
  await expect(page.getByRole('contentinfo').getByRole('link', { name: 'Server status' })).toHaveAttribute(
    'aria-current',
    'page',
  );

  await page.goBack();
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Video chat you host yourself');
  expect(await page.evaluate(() => (window as any).parlorNoReload)).toBe(true);
});

test('an unknown address shows the 404 page with a way back', async ({ page }) => {
  const response = await page.goto('/no/such/page');
  expect(response?.status()).toBe(404);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Page not found');
  await hydrated(page);
  await page.getByRole('link', { name: 'Back to the home page' }).click();
  await expect(page).toHaveURL(/\/$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Video chat you host yourself');
});

test('keyboard users can skip to the content and see where focus is', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  await page.keyboard.press('Tab');
  const skip = page.getByRole('link', { name: 'Skip to content' });
  await expect(skip).toBeFocused();
  await expect(skip).toBeInViewport();
  const outline = await skip.evaluate((el) => getComputedStyle(el).outlineStyle);
  expect(outline).not.toBe('none');
  await page.keyboard.press('Enter');
  await expect(page.getByRole('main')).toBeFocused();
});

test('the layout fits a phone screen without horizontal scrolling', async ({ page }) => {
  await page.setViewportSize({ width: 360, height: 740 });
  await page.goto('/');
  const overflow = await page.evaluate(
    () => document.documentElement.scrollWidth - document.documentElement.clientWidth,
  );
  expect(overflow).toBe(0);
  await expect(page.getByRole('navigation', { name: 'Main' })).toBeVisible();
});

test('colours follow the system light or dark setting', async ({ page }) => {
  const background = () => page.evaluate(() => getComputedStyle(document.body).backgroundColor);
  await page.emulateMedia({ colorScheme: 'light' });
  await page.goto('/');
  expect(await background()).toBe('rgb(247, 247, 249)');
  await page.emulateMedia({ colorScheme: 'dark' });
  expect(await background()).toBe('rgb(18, 19, 24)');
});
