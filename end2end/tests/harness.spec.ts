// Checks the test harness itself, so the call features can rely on it: inside the
// loopback-only namespace Chromium has fake media devices and connects WebRTC peers over
// 127.0.0.1. (Plain browser JavaScript here is test code, not the app's.)
import { expect, test } from '@playwright/test';

test('two peer connections connect over loopback with fake camera video', async ({ page }) => {
  await page.goto('/');
  const result = await page.evaluate(async () => {
    const stream = await navigator.mediaDevices.getUserMedia({ video: true, audio: true });
    const a = new RTCPeerConnection({ iceServers: [] });
    const b = new RTCPeerConnection({ iceServers: [] });
    const candidates: string[] = [];
    a.onicecandidate = (e) => {
      if (e.candidate) {
        candidates.push(e.candidate.candidate);
        b.addIceCandidate(e.candidate);
      }
    };
    b.onicecandidate = (e) => e.candidate && a.addIceCandidate(e.candidate);
    const remote = new Promise<MediaStreamTrack>((resolve) => (b.ontrack = (e) => resolve(e.track)));
    stream.getTracks().forEach((t) => a.addTrack(t, stream));
    await a.setLocalDescription();
    await b.setRemoteDescription(a.localDescription!);
    await b.setLocalDescription();
    await a.setRemoteDescription(b.localDescription!);
    const connected = await new Promise<string>((resolve) => {
      const check = () =>
        ['connected', 'failed'].includes(a.connectionState) && resolve(a.connectionState);
      a.onconnectionstatechange = check;
      setTimeout(() => resolve(a.connectionState), 10_000);
      check();
    });
    const track = await remote;
    return { connected, kind: track.kind, candidates };
  });
  expect(result.connected).toBe('connected');
  expect(['audio', 'video']).toContain(result.kind);
  // Every candidate is on loopback: nothing can leave the machine.
  expect(result.candidates.length).toBeGreaterThan(0);
  for (const c of result.candidates) expect(c).toContain('127.0.0.1');
});
