// Two friends call each other from behind routers of their own (see scripts/nat-matrix.sh):
// in every case the call connects with video flowing both ways, by the route the network
// allows, and after side A's address changes mid-call the call comes back by itself.
import { chromium, expect, test, type Browser, type Page } from '@playwright/test';
import { execFileSync } from 'node:child_process';
import * as fs from 'node:fs';
import { chromiumArgs } from '../chromium';
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
      ...chromiumArgs,
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

/**
 * Milliseconds from `since` until the remote video of every page has played a fresh run of
 * frames: at least 5 in a half-second window that starts after `since` (frames the jitter
 * buffer held before a break do not make a run).
 */
async function recovered(pages: Page[], since: number, timeout: number): Promise<number> {
  const history: { at: number; frames: number }[][] = pages.map(() => []);
  const done: (number | undefined)[] = pages.map(() => undefined);
  let stalled = false;
  while (Date.now() - since < timeout) {
    for (const [i, page] of pages.entries()) {
      if (done[i] !== undefined) continue;
      const at = Date.now();
      const now = { at, frames: await frames(page) };
      const start = history[i].find((h) => h.at >= since && at - h.at >= 500);
      if (start && now.frames - start.frames >= 5) done[i] = at - since;
      // No new frame for half a second: the change did break the path.
      if (start && now.frames === start.frames) stalled = true;
      history[i].push(now);
    }
    if (done.every((d) => d !== undefined)) {
      // A change that broke nothing would prove nothing about recovery.
      expect(stalled, 'the video should stop when the path breaks').toBe(true);
      return Math.max(...(done as number[]));
    }
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`the video did not come back within ${timeout} ms`);
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
  /** What changes mid-call (`scripts/nat-matrix.sh net <change>`), if anything. */
  change?: string;
  /** The longest recovery allowed after the change, in ms. */
  recoverWithin?: number;
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
    // Lost hole-punching checks may make a relay's pair (UDP, or TCP which loses nothing)
    // the first that works: any route is right, as long as the call plays.
    route: /^(Direct, through NAT|Relayed through the server( over TCP)?)$/,
  },
  {
    name: 'switch',
    title: "side A's address changes mid-call: the call comes back by itself",
    route: /^Direct, through NAT$/,
    change: 'move-a',
    // The bound (measured 1.9–2.5 s, also under the whole suite's load).
    recoverWithin: 5_000,
  },
  {
    name: 'rebind',
    title: "side A's router gets a new public address mid-call (A notices nothing): the call comes back",
    route: /^Direct, through NAT$/,
    change: 'rebind-a',
    // A notices nothing: its signaling socket must first be found dead (a probe) before the
    // restart can reach B. Measured 2.8–3.2 s alone, up to 6.2 s with the suite's load.
    recoverWithin: 8_000,
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
      // Chrome starts on the first pair that works and moves to a better one when its checks
      // succeed (a relay pair may come first under load): the route must settle on c.route.
      const seen = [];
      for (const p of [ann, bob]) {
        let q = await quality(p);
        await expect
          .poll(async () => (q = await quality(p)).route, { timeout: 10_000 })
          .toMatch(c.route);
        seen.push(q);
      }
      if (c.name === 'loss' && seen.some((q) => !q.route.endsWith('over TCP'))) {
        // The loss is real: the receivers count packets that never came (unless both sides
        // relay over TCP, which retransmits what the network drops).
        expect(Math.max(...seen.map((q) => q.loss))).toBeGreaterThan(0);
      }
      const result: Record<string, unknown> = {
        case: c.name,
        connectMs,
        routes: seen.map((q) => q.route),
        lossPercent: seen.map((q) => q.loss),
      };

      if (c.change) {
        const moved = Date.now();
        net(c.change);
        // The old path is dead; the call must come back with no one touching anything.
        const recoveryMs = await recovered([ann.page, bob.page], moved, 30_000);
        result.recoveryMs = recoveryMs;
        // Before the media watchdog a path that died unseen took ~10 s.
        expect(recoveryMs).toBeLessThan(c.recoverWithin ?? 6_000);
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
