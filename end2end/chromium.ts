// The Chromium flags every browser test starts with: headless, no sandbox (the tests run as
// root in network namespaces), nothing fetched in the background, a fake camera and
// microphone with no permission prompt.
export const chromiumArgs = [
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
];
