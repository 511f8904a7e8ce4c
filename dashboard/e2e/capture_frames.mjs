// Signs in to the dashboard as the operator and as a merchant in headless
// Chromium and records every WebSocket frame both pages receive for a while,
// for scripts/canary-test to scan for card data.
//
// Env: DASHBOARD_URL, OPERATOR_TOKEN, MERCHANT_ID, MERCHANT_SECRET,
// FRAMES_OUT (file), SECONDS (default 10), CHROMIUM.
import { writeFileSync } from 'node:fs';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set`);
  return v;
};
const URL = env('DASHBOARD_URL');
const seconds = Number(process.env.SECONDS || 10);
const frames = [];

const browser = await chromium.launch({
  executablePath: process.env.CHROMIUM || '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync'],
});

async function signedIn(kind, fields) {
  const context = await browser.newContext();
  const page = await context.newPage();
  page.on('websocket', (ws) => ws.on('framereceived', (f) => frames.push(String(f.payload))));
  await page.goto(URL);
  await page.click(`#tab-${kind}`);
  for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value);
  await page.click('#login-submit');
  await page.waitForFunction(() => document.querySelector('#conn')?.dataset.state === 'live', null, { timeout: 20000 });
  return page;
}

await signedIn('operator', { '#operator-token': env('OPERATOR_TOKEN') });
await signedIn('merchant', { '#account-id': env('MERCHANT_ID'), '#secret': env('MERCHANT_SECRET') });
await new Promise((resolve) => setTimeout(resolve, seconds * 1000));
await browser.close();
writeFileSync(env('FRAMES_OUT'), frames.join('\n'));
console.log(`capture_frames: ${frames.length} WebSocket frames`);
if (frames.length === 0) process.exit(1);
