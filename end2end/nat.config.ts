// The connectivity matrix (`scripts/nat-matrix.sh` sets up the namespaces and the server and
// runs this): each test launches its own two Chromiums, one in each side's namespace.
import { defineConfig } from '@playwright/test';

export default defineConfig({
  testDir: './nat',
  timeout: 120_000,
  expect: { timeout: 15_000 },
  // One network: the cases reconfigure the same routers, so they run one after another.
  workers: 1,
  fullyParallel: false,
  forbidOnly: true,
  reporter: [['list']],
  use: { trace: 'retain-on-failure' },
});
