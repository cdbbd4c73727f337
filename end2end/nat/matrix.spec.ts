// Two friends call each other from behind routers of their own (see scripts/nat-matrix.sh):
// in every case the call connects with video flowing both ways, by the route the network
// allows, and after side A's address changes mid-call the call comes back by itself.
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { befriendAndOpen, person, unique, type Person } from '../tests/support';

const env = (name: string) => {
  const value = process.env[name];
  if (!value) throw new Error(`${name} is not set: run scripts/nat-matrix.sh`);
  return value;
};

/** Reconfigures the routers (or moves side A) through the matrix script. */
function net(what: string) {
  execFileSync(env('PARLOR_NAT_SCRIPT'), ['net', what], { stdio: 'inherit' });
}

function record(result: Record<string, unknown>) {
  fs.appendFileSync(env('PARLOR_NAT_RESULTS'), `${JSON.stringify(result)}\n`);
}

async function browserOn(side: 'A' | 'B'): Promise<Browser> {
  const origin = env('PARLOR_NAT_URL');
  return chromium.launch({
    executablePath: env(`PARLOR_NAT_CHROMIUM_${side}`),
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--use-fake-device-for-media-stream',
      '--use-fake-ui-for-media-stream',
      // The server is on a plain-http address: let the camera work there as on https.
      `--unsafely-treat-insecure-origin-as-secure=${origin}`,
    ],
  });
}

/** Frames the remote video has shown so far. */
function frames(page: Page) {
  return page
    .getByTestId('remote-video')
    .evaluate((v: HTMLVideoElement) => v.getVideoPlaybackQuality().totalVideoFrames);
}

/** Resolves when the remote video has shown `n` more frames than now. */
async function framesAdvance(page: Page, n: number, timeout: number) {
  const start = await frames(page);
  await expect.poll(() => frames(page), { timeout, intervals: [100] }).toBeGreaterThan(start + n);
}

/** What the Quality panel says: the route, and the packet loss as a number. */
async function quality(p: Person) {
  await p.page.getByRole('button', { name: 'Quality' }).click();
  const route = p.page.getByTestId('quality-route');
  const loss = p.page.getByTestId('quality-loss');
  await expect(route).not.toHaveText('…');
  await expect(loss).toHaveText(/^\d+\.\d %$/);
  const result = { route: (await route.textContent()) ?? '', loss: parseFloat((await loss.textContent()) ?? '') };
  await p.page.getByRole('button', { name: 'Quality' }).click();
  return result;
}

type Case = {
  name: string;
  title: string;
  /** The route each side's Quality panel must show. */
  route: RegExp;
};

const cases: Case[] = [
  { name: 'direct', title: 'no NAT: the browsers reach each other directly', route: /^Direct$/ },
  {
    name: 'cone',
    title: 'a cone NAT each: the browsers punch through with their public addresses',
    route: /^Direct, through NAT$/,
  },
  {
    name: 'symmetric',
    title: 'a symmetric NAT each: the call goes through the relay',
    route: /^Relayed through the server/,
  },
  {
    name: 'udp-blocked',
    title: 'UDP blocked on both sides: the call goes through the relay over TCP',
    route: /^Relayed through the server over TCP$/,
  },
  {
    name: 'loss',
    title: '5 % of the packets lost on the way: the call still connects and plays',
    route: /^Direct, through NAT$/,
  },
  {
    name: 'switch',
    title: "side A's address changes mid-call: the call comes back by itself",
    route: /^Direct, through NAT$/,
  },
];

for (const c of cases) {
  test(`${c.title} (${c.name})`, async () => {
    net(c.name);
    const baseURL = env('PARLOR_NAT_URL');
    const [browserA, browserB] = await Promise.all([browserOn('A'), browserOn('B')]);
    try {
      const tag = unique();
      const options = { baseURL, permissions: ['camera', 'microphone'] };
      const ann = await person(browserA, 'Ann', tag, options);
      const bob = await person(browserB, 'Bob', tag, options);
      await befriendAndOpen(ann, bob);

      await ann.page.getByRole('button', { name: 'Video call' }).click();
      const accept = bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Accept' });
      await accept.click();
      const answered = Date.now();
      await Promise.all([framesAdvance(ann.page, 0, 30_000), framesAdvance(bob.page, 0, 30_000)]);
      const connectMs = Date.now() - answered;
      await expect(ann.page.getByTestId('call-status')).toHaveText('Connected');
      await expect(bob.page.getByTestId('call-status')).toHaveText('Connected');
      // Video keeps coming both ways, by the route this network allows.
      await Promise.all([framesAdvance(ann.page, 10, 10_000), framesAdvance(bob.page, 10, 10_000)]);
      const seen = [await quality(ann), await quality(bob)];
      for (const q of seen) expect(q.route).toMatch(c.route);
      if (c.name === 'loss') {
        // The loss is real: the receivers count packets that never came.
        expect(Math.max(...seen.map((q) => q.loss))).toBeGreaterThan(0);
      }
      const result: Record<string, unknown> = {
        case: c.name,
        connectMs,
        routes: seen.map((q) => q.route),
        lossPercent: seen.map((q) => q.loss),
      };

      if (c.name === 'switch') {
        const moved = Date.now();
        net('switch');
        // The old path is dead; the call must come back with no one touching anything.
        await Promise.all([framesAdvance(ann.page, 10, 30_000), framesAdvance(bob.page, 10, 30_000)]);
        // Frames buffered before the switch do not count: wait for a fresh run of them.
        await Promise.all([framesAdvance(ann.page, 10, 30_000), framesAdvance(bob.page, 10, 30_000)]);
        result.recoveryMs = Date.now() - moved;
        await expect(ann.page.getByTestId('call-status')).toHaveText('Connected');
        await expect(bob.page.getByTestId('call-status')).toHaveText('Connected');
        result.routesAfter = [(await quality(ann)).route, (await quality(bob)).route];
      }
      record(result);
      await ann.page.getByRole('button', { name: 'Hang up' }).click();
      await expect(bob.page.getByTestId('call')).toBeHidden();
    } finally {
      await Promise.all([browserA.close(), browserB.close()]);
    }
  });
}
