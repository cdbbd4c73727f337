// Calls between two friends in two browsers with Chromium's fake camera and microphone,
// inside the loopback-only namespace: ring, answer, live video both ways, mute seen by the
// other side, hang up; declined and cancelled calls; the records left in the conversation.
import { expect, test, type Page } from '@playwright/test';
import * as fs from 'node:fs';
import { befriendAndOpen, hydrated, openFriends, person, unique, type Person } from './support';

/** The remote video shows frames, and they keep coming. */
async function expectLiveVideo(page: Page) {
  const video = page.getByTestId('remote-video');
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
  const t1 = await video.evaluate((v: HTMLVideoElement) => v.currentTime);
  await expect.poll(() => video.evaluate((v: HTMLVideoElement) => v.currentTime)).toBeGreaterThan(t1 + 0.5);
}

function callRecords(p: Person, text: string | RegExp) {
  return p.page.getByTestId('messages').getByTestId('message-body').filter({ hasText: text });
}

test('ring, answer, video both ways, mute seen by the other side, hang up ends it for both', async ({ browser }) => {
  test.setTimeout(90_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriendAndOpen(ann, bob);

  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText(`Calling ${bob.name}…`);
  const prompt = bob.page.getByRole('alertdialog', { name: 'Call' });
  await expect(prompt.getByTestId('call-status')).toHaveText(`${ann.name} is calling you`);
  // Bob sees himself before answering.
  await expect(bob.page.getByTestId('local-video')).toBeVisible();
  await expect(bob.page.getByTestId('remote-video')).toBeHidden();
  await expect
    .poll(() => bob.page.getByTestId('local-video').evaluate((v: HTMLVideoElement) => v.videoWidth))
    .toBeGreaterThan(0);
  await prompt.getByRole('button', { name: 'Accept' }).click();

  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expect(bob.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(ann.page);
  await expectLiveVideo(bob.page);

  // Another microphone, mid-call, without renegotiating: the call and the video go on.
  await ann.page.getByRole('button', { name: 'Settings' }).click();
  await ann.page.getByLabel('Microphone').selectOption({ label: 'Fake Audio Input 2' });
  await expect
    .poll(() =>
      ann.page.getByTestId('local-video').evaluate((v: HTMLVideoElement) =>
        (v.srcObject as MediaStream).getAudioTracks().map((t) => t.label).join(),
      ),
    )
    .toBe('Fake Audio Input 2');
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected');
  await expectLiveVideo(bob.page);

  // The quality panel reads getStats.
  await ann.page.getByRole('button', { name: 'Quality' }).click();
  await expect(ann.page.getByTestId('quality-resolution')).toHaveText(/^\d+×\d+$/);
  await expect(ann.page.getByTestId('quality-rtt')).toHaveText(/^\d+ ms$/);
  await expect(ann.page.getByTestId('quality-in')).toHaveText(/^\d+ kbit\/s$/);
  await expect(ann.page.getByTestId('quality-loss')).toHaveText(/^\d+\.\d %$/);

  await ann.page.getByRole('button', { name: 'Mute' }).click();
  await expect(bob.page.getByTestId('peer-state')).toHaveText(`${ann.name} is muted`);
  await ann.page.getByRole('button', { name: 'Camera off' }).click();
  await expect(bob.page.getByTestId('peer-state')).toHaveText(`${ann.name} muted and turned the camera off`);
  await ann.page.getByRole('button', { name: 'Unmute' }).click();
  await ann.page.getByRole('button', { name: 'Camera on' }).click();
  await expect(bob.page.getByTestId('peer-state')).toHaveText('');

  // Chat over the call, peer to peer, both ways; unread lines are counted on the button.
  await ann.page.getByRole('button', { name: 'Chat' }).click();
  await ann.page.getByLabel('Chat message').fill('Can you see me?');
  await ann.page.getByLabel('Chat message').press('Enter');
  await expect(bob.page.getByRole('button', { name: 'Chat 1 unread' })).toBeVisible();
  await bob.page.getByRole('button', { name: 'Chat' }).click();
  await expect(bob.page.getByTestId('call-chat')).toContainText(`${ann.name}: Can you see me?`);
  await bob.page.getByLabel('Chat message').fill('Loud and clear');
  await bob.page.getByTestId('call').getByRole('button', { name: 'Send', exact: true }).click();
  await expect(ann.page.getByTestId('call-chat')).toContainText(`${bob.name}: Loud and clear`);
  await expect(ann.page.getByTestId('call-chat')).toContainText('You: Can you see me?');

  await bob.page.getByRole('button', { name: 'Hang up' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Call ended');
  await expect(bob.page.getByTestId('call-status')).toHaveText('Call ended');
  await expect(callRecords(ann, /^Video call · \d+:\d\d$/)).toHaveCount(1);
  await expect(callRecords(bob, /^Video call · \d+:\d\d$/)).toHaveCount(1);
  await ann.close();
  await bob.close();
});

test('a declined call and a cancelled call end on both sides and are recorded', async ({ browser }) => {
  test.setTimeout(60_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriendAndOpen(ann, bob);

  await ann.page.getByRole('button', { name: 'Voice call' }).click();
  await bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Decline' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Call declined');
  await expect(callRecords(ann, 'Voice call declined')).toHaveCount(1);
  await expect(callRecords(bob, 'Voice call declined')).toHaveCount(1);

  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await expect(bob.page.getByRole('alertdialog', { name: 'Call' })).toBeVisible();
  await ann.page.getByRole('button', { name: 'Cancel' }).click();
  await expect(bob.page.getByTestId('call-status')).toHaveText('Call cancelled');
  await expect(callRecords(bob, 'Missed video call')).toHaveCount(1);
  await ann.close();
  await bob.close();
});

test('an unanswered call becomes a missed call, and a busy friend says so', async ({ browser }) => {
  test.setTimeout(60_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  const cat = await person(browser, 'Cat', tag);
  await befriendAndOpen(ann, bob);

  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await expect(bob.page.getByRole('alertdialog', { name: 'Call' })).toBeVisible();
  // Nobody answers (the test server rings for 6 s).
  await expect(ann.page.getByTestId('call-status')).toHaveText('No answer', { timeout: 15_000 });
  await expect(bob.page.getByTestId('call-status')).toHaveText('No answer');
  await expect(callRecords(bob, 'Missed video call')).toHaveCount(1);
  await expect(bob.page.getByTestId('nav-unread')).toHaveCount(0); // the conversation is open: read

  // Bob takes a call from Ann; Cat, his friend too, finds him busy.
  await befriendAndOpen(cat, bob);
  await bob.page.goto('/friends');
  await hydrated(bob.page);
  await ann.page.getByRole('button', { name: 'Voice call' }).click();
  await bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Accept' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await cat.page.getByRole('button', { name: 'Voice call' }).click();
  await expect(cat.page.getByTestId('call-status')).toHaveText('Busy: they are in another call');
  await expect(bob.page.getByTestId('call-status')).toHaveText('Connected');
  await ann.page.getByRole('button', { name: 'Hang up' }).click();
  await expect(bob.page.getByTestId('call-status')).toHaveText('Call ended');
  for (const p of [ann, bob, cat]) await p.close();
});

test('recording a call downloads a WebM file with a duration, and the other side is told', async ({ browser }) => {
  test.setTimeout(90_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriendAndOpen(ann, bob);
  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Accept' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(ann.page);

  await ann.page.getByRole('button', { name: 'Record' }).click();
  await expect(bob.page.getByTestId('peer-recording')).toHaveText(`${ann.name} is recording this call`);
  // The elapsed time counts up (to 2 s at least: a loaded machine may not show every second).
  await expect(ann.page.getByTestId('recording')).toHaveText(/^● Recording 0:0[2-9]$/, { timeout: 10_000 });
  const download = ann.page.waitForEvent('download');
  await ann.page.getByRole('button', { name: 'Stop recording' }).click();
  const file = await download;
  expect(file.suggestedFilename()).toMatch(/^parlor-call-.*\.webm$/);
  const bytes = fs.readFileSync(await file.path());
  expect(bytes.length).toBeGreaterThan(10_000);
  // An EBML (WebM) file...
  expect([...bytes.subarray(0, 4)]).toEqual([0x1a, 0x45, 0xdf, 0xa3]);
  expect(bytes.includes(Buffer.from('webm'))).toBe(true);
  // ...whose segment info carries the duration (in ms): at least the 2 s recorded.
  const at = bytes.indexOf(Buffer.from([0x44, 0x89, 0x88]));
  expect(at).toBeGreaterThan(0);
  expect(bytes.readDoubleBE(at + 3)).toBeGreaterThan(2000);
  await expect(bob.page.getByTestId('peer-recording')).toHaveText('');
  await expect(ann.page.getByTestId('recording')).toHaveText('');

  // A browser plays it and knows how long it is; the picture holds both videos side by side:
  // two 4:3 cameras make it at least twice as wide as high (one alone would be 4:3), and both
  // halves show a picture, not black.
  const { duration, width, height, left, right } = await ann.page.evaluate(async (b64) => {
    const data = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
    const video = document.createElement('video');
    video.muted = true;
    video.src = URL.createObjectURL(new Blob([data], { type: 'video/webm' }));
    await new Promise((resolve, reject) => {
      video.onloadeddata = resolve;
      video.onerror = () => reject(new Error('the recording does not load'));
    });
    video.currentTime = 1;
    await new Promise((resolve) => (video.onseeked = resolve));
    const canvas = document.createElement('canvas');
    canvas.width = video.videoWidth;
    canvas.height = video.videoHeight;
    const context = canvas.getContext('2d', { willReadFrequently: true })!;
    // The seeked frame may not be decoded yet: draw until the canvas holds a picture.
    for (let tries = 0; tries < 50; tries++) {
      context.drawImage(video, 0, 0);
      if (context.getImageData(canvas.width / 2, canvas.height / 2, 1, 1).data[3] > 0) break;
      await new Promise((resolve) => setTimeout(resolve, 100));
    }
    // Mean brightness of a quarter-wide band in the middle of each half.
    const brightness = (x: number) => {
      const pixels = context.getImageData(x, 0, Math.floor(canvas.width / 4), canvas.height).data;
      let sum = 0;
      for (let i = 0; i < pixels.length; i += 4) sum += pixels[i] + pixels[i + 1] + pixels[i + 2];
      return sum / (pixels.length / 4);
    };
    return {
      duration: video.duration,
      width: video.videoWidth,
      height: video.videoHeight,
      left: brightness(Math.floor(canvas.width / 8)),
      right: brightness(Math.floor((canvas.width * 5) / 8)),
    };
  }, bytes.toString('base64'));
  expect(duration).toBeGreaterThan(2);
  expect(Number.isFinite(duration)).toBe(true);
  expect(height).toBeGreaterThan(0);
  expect(width).toBeGreaterThanOrEqual(2 * height);
  expect(left).toBeGreaterThan(30);
  expect(right).toBeGreaterThan(30);
  await ann.close();
  await bob.close();
});

test('a shared screen appears on the other side beside the camera and disappears when stopped', async ({ browser }) => {
  test.setTimeout(90_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriendAndOpen(ann, bob);
  // This time from the friends list.
  await openFriends(ann);
  await ann.page.getByTestId('friend').filter({ hasText: bob.name }).getByRole('button', { name: 'Call' }).click();
  await bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Accept' }).click();
  await expect(bob.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });

  await ann.page.getByRole('button', { name: 'Share screen' }).click();
  await expect(bob.page.getByTestId('peer-screen')).toHaveText(`${ann.name} is sharing their screen`);
  const screen = bob.page.getByTestId('screen-video');
  await expect.poll(() => screen.evaluate((v: HTMLVideoElement) => v.videoWidth), { timeout: 20_000 }).toBeGreaterThan(0);
  const t1 = await screen.evaluate((v: HTMLVideoElement) => v.currentTime);
  await expect.poll(() => screen.evaluate((v: HTMLVideoElement) => v.currentTime)).toBeGreaterThan(t1 + 0.5);
  // The camera goes on beside it.
  await expectLiveVideo(bob.page);

  await ann.page.getByRole('button', { name: 'Stop sharing' }).click();
  await expect(bob.page.getByTestId('peer-screen')).toHaveText('');
  await expect(screen).toBeHidden();
  await expect(ann.page.getByRole('button', { name: 'Share screen' })).toBeVisible();
  await expectLiveVideo(bob.page);
  await ann.close();
  await bob.close();
});

test('a call survives one side losing the network for a moment, without anyone doing anything', async ({ browser }) => {
  test.setTimeout(120_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriendAndOpen(ann, bob);
  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Accept' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(ann.page);

  await bob.setOffline(true);
  await expect(bob.page.getByTestId('connection')).toContainText('offline', { timeout: 15_000 });
  await bob.setOffline(false);
  await expect(bob.page.getByTestId('connection')).toHaveText('', { timeout: 20_000 });

  // Back: still in the same call, media flowing, signaling working again.
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 30_000 });
  await expect(bob.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 30_000 });
  await expectLiveVideo(ann.page);
  await expectLiveVideo(bob.page);
  await bob.page.getByRole('button', { name: 'Mute' }).click();
  await expect(ann.page.getByTestId('peer-state')).toHaveText(`${bob.name} is muted`);
  await ann.page.getByRole('button', { name: 'Hang up' }).click();
  await expect(bob.page.getByTestId('call-status')).toHaveText('Call ended');
  await ann.close();
  await bob.close();
});

test('"Always relay calls" sends the call through the built-in TURN server, and video still flows', async ({ browser }) => {
  test.setTimeout(90_000);
  const tag = unique();
  const ann = await person(browser, 'Ann', tag);
  const bob = await person(browser, 'Bob', tag);
  await befriendAndOpen(ann, bob);

  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await ann.page.getByRole('button', { name: 'Settings' }).click();
  await ann.page.getByLabel('Always relay calls').check();
  await bob.page.getByRole('alertdialog', { name: 'Call' }).getByRole('button', { name: 'Accept' }).click();
  await expect(ann.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expect(bob.page.getByTestId('call-status')).toHaveText('Connected', { timeout: 20_000 });
  await expectLiveVideo(ann.page);
  await expectLiveVideo(bob.page);
  // Both ends see the media take the relay (Ann offered no address of her own).
  for (const p of [ann, bob]) {
    await p.page.getByRole('button', { name: 'Quality' }).click();
    // Over UDP or TCP: the relay offers both, and either may be the first pair that works.
    await expect(p.page.getByTestId('quality-route')).toHaveText(/^Relayed through the server( over TCP)?$/);
  }
  await bob.page.getByRole('button', { name: 'Hang up' }).click();

  // The choice is kept in Ann's browser for the next call.
  await ann.page.reload();
  await hydrated(ann.page);
  await ann.page.getByRole('button', { name: 'Video call' }).click();
  await ann.page.getByRole('button', { name: 'Settings' }).click();
  await expect(ann.page.getByLabel('Always relay calls')).toBeChecked();
  await ann.page.getByRole('button', { name: 'Cancel' }).click();
  await ann.close();
  await bob.close();
});
