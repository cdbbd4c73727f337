// Accounts as a person uses them: sign up, sign out, sign in, errors next to the fields,
// sessions across reloads, profile changes, Google sign-in via the stand-in provider, and
// the forms without JavaScript.
import { expect, test, type Page } from '@playwright/test';
import { hydrated, PASSWORD, signUp, uniqueEmail } from './support';

async function signIn(page: Page, email: string, password: string) {
  await page.goto('/signin');
  await hydrated(page);
  await page.getByLabel('Email').fill(email);
  await page.getByLabel('Password').fill(password);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
}

test('sign up, sign out, and sign in again; a wrong password says so', async ({ page }) => {
  const email = uniqueEmail('ann');
  await signUp(page, email, 'Ann');
  await expect(page).toHaveURL(/\/$/);

  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Sign in' })).toBeVisible();
  await expect(page.getByTestId('signed-in-name')).toHaveCount(0);

  await signIn(page, email, 'not my password');
  await expect(page.getByRole('alert').filter({ hasText: 'Email or password is incorrect.' })).toBeVisible();
  await expect(page.getByTestId('signed-in-name')).toHaveCount(0);

  await page.getByLabel('Password').fill(PASSWORD);
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(page.getByTestId('signed-in-name')).toHaveText('Ann');
});

test('sign-up errors appear next to the field and keep what was typed', async ({ page }) => {
  await page.goto('/signup');
  await hydrated(page);
  await page.getByLabel('Email').fill(uniqueEmail('bob'));
  await page.getByLabel('Display name').fill('Bob');
  await page.getByLabel('Password').fill('short');
  await page.getByRole('button', { name: 'Create account' }).click();
  await expect(page.locator('#field-password-error')).toHaveText('Use at least 8 characters.');
  await expect(page.getByLabel('Password')).toHaveAttribute('aria-invalid', 'true');
  await expect(page.getByLabel('Display name')).toHaveValue('Bob');
});

test('the session survives a reload and the server renders the signed-in page', async ({ page }) => {
  await signUp(page, uniqueEmail('cat'), 'Cat');
  await page.reload();
  await expect(page.getByTestId('signed-in-name')).toHaveText('Cat');
  // The HTML itself (before any script) already names the user: no flash of "Sign in".
  const html = await (await page.request.get('/')).text();
  expect(html).toContain('data-testid="signed-in-name"');
  expect(html).toContain('Cat');
});

test('profile changes persist, and a new password replaces the old one', async ({ page }) => {
  const email = uniqueEmail('dan');
  await signUp(page, email, 'Dan');
  await page.getByTestId('signed-in-name').click();
  await expect(page).toHaveURL(/\/profile$/);
  await expect(page.getByText(`Signed in as ${email}`)).toBeVisible();

  const nameForm = page.getByRole('region', { name: 'Display name' });
  await nameForm.getByLabel('Display name').fill('Daniel 🚀');
  await nameForm.getByRole('button', { name: 'Save name' }).click();
  await expect(nameForm.getByRole('status')).toHaveText('Display name saved.');
  await expect(page.getByTestId('signed-in-name')).toHaveText('Daniel 🚀');
  await page.reload();
  await expect(page.getByRole('region', { name: 'Display name' }).getByLabel('Display name')).toHaveValue('Daniel 🚀');
  // The server-rendered form is there before it is live: wait, or the click posts it natively.
  await hydrated(page);

  const passwordForm = page.getByRole('region', { name: 'Change password' });
  await passwordForm.getByLabel('Current password').fill(PASSWORD);
  await passwordForm.getByLabel('New password').fill('a brand new secret');
  await passwordForm.getByRole('button', { name: 'Save password' }).click();
  await expect(passwordForm.getByRole('status')).toContainText('Password saved.');

  await page.getByRole('button', { name: 'Sign out', exact: true }).click();
  await signIn(page, email, PASSWORD);
  await expect(page.getByRole('alert').filter({ hasText: 'Email or password is incorrect.' })).toBeVisible();
  await page.getByLabel('Password').fill('a brand new secret');
  await page.getByRole('button', { name: 'Sign in', exact: true }).click();
  await expect(page.getByTestId('signed-in-name')).toHaveText('Daniel 🚀');
});

test('deleting the account signs out and the account is gone', async ({ page }) => {
  const email = uniqueEmail('eve');
  await signUp(page, email, 'Eve');
  await page.goto('/profile');
  await hydrated(page);
  const danger = page.getByRole('region', { name: 'Delete account' });
  await danger.getByLabel('Password').fill(PASSWORD);
  await danger.getByRole('button', { name: 'Delete my account' }).click();
  await expect(page.getByRole('banner').getByRole('link', { name: 'Sign in' })).toBeVisible();
  await signIn(page, email, PASSWORD);
  await expect(page.getByRole('alert').filter({ hasText: 'Email or password is incorrect.' })).toBeVisible();
});

test('sign in with Google through the stand-in provider', async ({ page }) => {
  const email = uniqueEmail('gina');
  await page.goto('/signin');
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with Google' }).click();
  // The provider's consent page.
  await expect(page.getByRole('heading', { name: 'Sign in to Parlor' })).toBeVisible();
  await page.getByLabel('Email', { exact: true }).fill(email);
  await page.getByLabel('Name', { exact: true }).fill('Gina G');
  await page.getByLabel('Subject').fill(`sub-${email}`);
  await page.getByRole('button', { name: 'Allow' }).click();
  await expect(page.getByTestId('signed-in-name')).toHaveText('Gina G');
  await page.goto('/profile');
  await expect(page.getByText('Google linked')).toBeVisible();
});

test('declining at Google comes back with a message', async ({ page }) => {
  await page.goto('/signin');
  await hydrated(page);
  await page.getByRole('link', { name: 'Sign in with Google' }).click();
  await page.getByRole('button', { name: 'Deny' }).click();
  await expect(page.getByRole('alert').filter({ hasText: 'Google sign-in was cancelled.' })).toBeVisible();
  await expect(page.getByTestId('signed-in-name')).toHaveCount(0);
});

test.describe('without JavaScript', () => {
  test.use({ javaScriptEnabled: false });

  test('the sign-in form posts, shows its error, and signs in', async ({ page, request }) => {
    const email = uniqueEmail('nojs');
    const created = await request.post('/api/auth/sign_up', {
      form: { email, display_name: 'No Script', password: PASSWORD },
    });
    expect(created.ok()).toBeTruthy();

    await page.goto('/signin');
    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill('wrong password');
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByText('Email or password is incorrect.')).toBeVisible();

    await page.getByLabel('Email').fill(email);
    await page.getByLabel('Password').fill(PASSWORD);
    await page.getByRole('button', { name: 'Sign in', exact: true }).click();
    await expect(page.getByTestId('signed-in-name')).toHaveText('No Script');
  });
});

test('the Friends card on the home page leads to sign-up, and once signed in to your friends', async ({ page }) => {
  await page.goto('/');
  await hydrated(page);
  const friends = page.getByTestId('way-friends');
  await friends.getByRole('link', { name: 'Create account' }).click();
  await expect(page).toHaveURL(/\/signup$/);
  await expect(page.getByRole('heading', { level: 1 })).toHaveText('Create an account');

  await signUp(page, uniqueEmail('cara'), 'Cara');
  await page.goto('/');
  await hydrated(page);
  await expect(friends.getByRole('link', { name: 'Create account' })).toHaveCount(0);
  await friends.getByRole('link', { name: 'Your friends' }).click();
  await expect(page).toHaveURL(/\/friends$/);
  await expect(page.getByRole('heading', { name: 'Friends', level: 1 })).toBeVisible();
  // Every way to meet has its way in.
  await page.goto('/');
  await expect(page.getByRole('main').getByText('Coming soon')).toHaveCount(0);
  await expect(page.getByTestId('way-strangers').getByRole('link', { name: 'Talk to a stranger' })).toBeVisible();
  await expect(page.getByTestId('way-codes').getByRole('link', { name: 'Create a code' })).toBeVisible();
});
