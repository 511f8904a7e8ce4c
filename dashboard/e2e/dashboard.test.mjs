// Headless Chromium against a running dashboard while results flow.
// Started by run.sh, which provides the environment below.
import { test, before, after } from 'node:test';
import assert from 'node:assert/strict';
import { mkdirSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { spawn } from 'node:child_process';
import { chromium } from 'playwright-core';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} must be set (use run.sh)`);
  return v;
};
const URL = env('DASHBOARD_URL');
const OPERATOR_TOKEN = env('OPERATOR_TOKEN');
const MERCHANT_ID = env('MERCHANT_ID');
const MERCHANT_SECRET = env('MERCHANT_SECRET');
const ARTIFACTS = process.env.ARTIFACTS_DIR || 'artifacts';
const CHROMIUM = process.env.CHROMIUM || '/usr/bin/chromium';

let browser;

before(async () => {
  mkdirSync(ARTIFACTS, { recursive: true });
  browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      '--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
      '--disable-background-networking', '--disable-component-update', '--disable-sync',
    ],
    // launch() gives every run a fresh temporary profile (user-data-dir).
  });
});

after(async () => {
  if (browser) await browser.close();
});

const number = (text) => Number(String(text).replace(/[^0-9.]/g, ''));

async function signIn(page, kind, fields) {
  await page.goto(URL);
  await page.click(`#tab-${kind}`);
  for (const [selector, value] of Object.entries(fields)) await page.fill(selector, value);
  await page.click('#login-submit');
}

async function waitLive(page) {
  await page.waitForFunction(() => document.querySelector('#conn')?.dataset.state === 'live', null, { timeout: 20000 });
}

async function kpi(page, id) {
  return number(await page.textContent(`#${id}`));
}

// The failing webhook endpoints panel: [merchant, endpoint] per row, once
// the first poll has answered.
async function webhookRows(page) {
  await page.waitForFunction(() => document.querySelector('#webhooks-note').textContent.includes('failing'), null, { timeout: 15000 });
  return page.$$eval('#webhooks tr', (trs) => trs.map((tr) => [tr.children[0].textContent, tr.dataset.id]));
}

async function rows(page) {
  return page.$$eval('#recent tr', (trs) => trs.map((tr) => Array.from(tr.children, (td) => td.textContent)));
}

test('operator sees counters, chart and table update live, at most ~10 frames/s', async () => {
  const page = await browser.newPage({ viewport: { width: 1440, height: 960 } });
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));

  // A wrong token is refused with a message, not a blank page.
  await signIn(page, 'operator', { '#operator-token': 'wrong-token-wrong-token' });
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);
  assert.match(await page.textContent('#login-error'), /credentials/);
  await page.screenshot({ path: join(ARTIFACTS, 'login.png') });

  await page.fill('#operator-token', OPERATOR_TOKEN);
  await page.click('#login-submit');
  await waitLive(page);
  assert.match(await page.textContent('#view-name'), /Operator/);

  // Counters move while traffic flows.
  await page.waitForFunction(() => Number(document.querySelector('#kpi-total').textContent.replace(/\D/g, '')) > 0, null, { timeout: 30000 });
  const total1 = await kpi(page, 'kpi-total');
  const top1 = (await rows(page))[0];
  await page.waitForTimeout(3000);
  const total2 = await kpi(page, 'kpi-total');
  const rows2 = await rows(page);
  assert.ok(total2 > total1, `total did not grow: ${total1} -> ${total2}`);
  assert.equal(await kpi(page, 'kpi-approved') + await kpi(page, 'kpi-rejected') >= total2, true);
  assert.ok(rows2.length > 10, `table has ${rows2.length} rows`);
  assert.notDeepEqual(rows2[0], top1, 'the newest row changed');
  assert.ok(await kpi(page, 'kpi-tps') > 0, 'rate shows traffic');
  const merchants = new Set(rows2.map((r) => r[2]));
  assert.ok(merchants.size > 1, `operator sees several merchants: ${[...merchants]}`);
  // Every merchant's failing webhook endpoint, the disabled one marked so.
  assert.deepEqual(await webhookRows(page), [[MERCHANT_ID, 'ep_e2e_a'], ['shop-b', 'ep_e2e_b']]);
  assert.equal(await page.textContent('#webhooks tr[data-id="ep_e2e_b"] .badge'), 'disabled (failing)');
  assert.equal(await page.textContent('#webhooks tr[data-id="ep_e2e_a"] .badge'), 'retrying');
  assert.ok(!(await page.textContent('#webhooks-card')).includes('whsec_'), 'no signing secret on the page');
  for (const r of rows2) {
    assert.match(r[4], /^(\w+ )?\d{6}\*+\d{4}$/, `card cell shows only 6+4 digits: ${r[4]}`);
    assert.match(r[5], /^(approved|rejected)$/);
  }
  const chartDrawn = await page.$eval('#chart', (c) => {
    const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
    let colored = 0;
    for (let i = 0; i < d.length; i += 4) if (d[i + 3] > 0 && (d[i] !== d[i + 1] || d[i + 1] !== d[i + 2])) colored += 1;
    return colored;
  });
  assert.ok(chartDrawn > 500, `chart has ${chartDrawn} coloured pixels`);

  // Frames per second the browser receives, over 5 s of traffic.
  const s1 = await page.evaluate(() => ({ ...window.__dashboard, at: performance.now() }));
  await page.waitForTimeout(5000);
  const s2 = await page.evaluate(() => ({ ...window.__dashboard, at: performance.now() }));
  const fps = (s2.frames - s1.frames) / ((s2.at - s1.at) / 1000);
  console.log(`browser received ${s2.frames - s1.frames} frames in ${((s2.at - s1.at) / 1000).toFixed(1)} s = ${fps.toFixed(1)} frames/s`);
  writeFileSync(join(ARTIFACTS, 'browser-fps.txt'), `${fps.toFixed(2)}\n`);
  assert.ok(fps <= 11, `browser got ${fps.toFixed(1)} frames/s`);
  assert.ok(fps >= 2, `browser got only ${fps.toFixed(1)} frames/s while traffic flows`);

  await page.screenshot({ path: join(ARTIFACTS, 'dashboard.png'), fullPage: true });

  // A dropped connection is shown and re-established by the page itself.
  await page.evaluate(() => socket.close(4000, 'test'));
  await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'reconnecting', null, { timeout: 5000 });
  await waitLive(page);
  const before = await kpi(page, 'kpi-total');
  await page.waitForFunction((n) => Number(document.querySelector('#kpi-total').textContent.replace(/\D/g, '')) > n, before, { timeout: 10000 });

  assert.deepEqual(errors, []);
  await page.close();
});

test('a merchant sees only their own transactions', async () => {
  const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
  const page = await context.newPage();
  await signIn(page, 'merchant', { '#account-id': MERCHANT_ID, '#secret': 'not-the-secret' });
  await page.waitForFunction(() => document.querySelector('#login-error').textContent.length > 0);

  await page.fill('#secret', MERCHANT_SECRET);
  await page.click('#login-submit');
  await waitLive(page);
  assert.match(await page.textContent('#view-name'), new RegExp(MERCHANT_ID));
  assert.equal(await page.isHidden('#merchants-card'), true, 'no list of other merchants');
  await page.waitForFunction(() => document.querySelectorAll('#recent tr').length >= 5, null, { timeout: 30000 });
  const t1 = await kpi(page, 'kpi-total');
  await page.waitForTimeout(2500);
  const t2 = await kpi(page, 'kpi-total');
  assert.ok(t2 > t1, `merchant total did not grow: ${t1} -> ${t2}`);
  const r = await rows(page);
  assert.ok(r.length >= 5);
  for (const row of r) assert.equal(row[2], MERCHANT_ID, `row of another merchant: ${row}`);
  assert.deepEqual(await webhookRows(page), [[MERCHANT_ID, 'ep_e2e_a']], 'only their own failing endpoint');
  // The secret never stays in the page or its storage.
  const stored = await page.evaluate(() => JSON.stringify(sessionStorage) + document.body.innerHTML);
  assert.ok(!stored.includes(MERCHANT_SECRET));
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-merchant.png'), fullPage: true });
  await context.close();
});

test('the page reconnects by itself when the dashboard restarts', { skip: !process.env.DASHBOARD_RESTART }, async () => {
  const page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
  await signIn(page, 'operator', { '#operator-token': OPERATOR_TOKEN });
  await waitLive(page);
  const restarted = new Promise((resolve, reject) => {
    const child = spawn(process.env.DASHBOARD_RESTART, ['2'], { stdio: 'inherit' });
    child.on('exit', (code) => (code === 0 ? resolve() : reject(new Error(`restart exited ${code}`))));
  });
  // Down: the page says so, and counts down to its next attempt.
  await page.waitForFunction(() => document.querySelector('#conn').dataset.state === 'reconnecting', null, { timeout: 15000 });
  assert.match(await page.textContent('#conn'), /Reconnecting/);
  await page.screenshot({ path: join(ARTIFACTS, 'dashboard-reconnecting.png') });
  await restarted;
  // Back: live again without a reload, same session, and counting (a new
  // process starts its live counters from zero).
  await waitLive(page);
  // Frames from the new process, not the last ones from the old.
  const f0 = await page.evaluate(() => window.__dashboard.frames);
  await page.waitForFunction((n) => window.__dashboard.frames >= n + 2, f0, { timeout: 10000 });
  const t1 = await kpi(page, 'kpi-total');
  await page.waitForFunction((n) => Number(document.querySelector('#kpi-total').textContent.replace(/\D/g, '')) > n, t1, { timeout: 10000 });
  assert.equal(await page.isVisible('#board'), true, 'still signed in');
  await page.close();
});
