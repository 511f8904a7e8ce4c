// Dashboard page: login, a self-reconnecting WebSocket of snapshot frames,
// and rendering. Everything is drawn with textContent (never innerHTML), so
// data from the topic cannot inject markup.
'use strict';

const SESSION_KEY = 'dashboard.session';
const PROTOCOL = 'dashboard.v1';
const CLOSE_SESSION_EXPIRED = 4001;
// The server refreshes every view at least once a second.
const STALE_AFTER_MS = 3500;

const $ = (id) => document.getElementById(id);
const fmtInt = new Intl.NumberFormat('en-US');
const fmtRate = new Intl.NumberFormat('en-US', { maximumFractionDigits: 1, minimumFractionDigits: 1 });
const fmtMoney = new Intl.NumberFormat('en-US', { style: 'currency', currency: 'USD' });
const fmtTime = new Intl.DateTimeFormat(undefined, { hour: '2-digit', minute: '2-digit', second: '2-digit' });

// Frames received, for the e2e test and the footer.
const stats = { frames: 0, firstAt: 0, lastAt: 0, lastSeq: 0, missed: 0 };
window.__dashboard = stats;

let session = loadSession();
let socket = null;
let attempt = 0;
let reconnectTimer = null;
let renewTimer = null;
let latest = null;

function loadSession() {
  try {
    const s = JSON.parse(sessionStorage.getItem(SESSION_KEY) || 'null');
    return s && s.expires_at * 1000 > Date.now() ? s : null;
  } catch (_) {
    return null;
  }
}

function saveSession(s) {
  session = s;
  if (s) sessionStorage.setItem(SESSION_KEY, JSON.stringify(s));
  else sessionStorage.removeItem(SESSION_KEY);
}

// ---- login ---------------------------------------------------------------

let loginKind = 'merchant';

function selectTab(kind) {
  loginKind = kind;
  for (const b of document.querySelectorAll('.tabs button')) {
    b.setAttribute('aria-selected', String(b.dataset.kind === kind));
  }
  for (const d of document.querySelectorAll('[data-for]')) d.hidden = d.dataset.for !== kind;
}

async function submitLogin(event) {
  event.preventDefault();
  const body = loginKind === 'operator'
    ? { kind: 'operator', token: $('operator-token').value }
    : { kind: 'merchant', account_id: $('account-id').value.trim(), secret: $('secret').value };
  $('login-submit').disabled = true;
  $('login-error').textContent = '';
  try {
    const res = await fetch('/api/session', {
      method: 'POST',
      headers: { 'content-type': 'application/json' },
      body: JSON.stringify(body),
      cache: 'no-store',
    });
    const data = await res.json().catch(() => ({}));
    if (!res.ok) {
      const message = (data.error && data.error.message) || `sign-in failed (${res.status})`;
      $('login-error').textContent = message.charAt(0).toUpperCase() + message.slice(1);
      return;
    }
    // The secret is not kept anywhere once exchanged for a session.
    $('secret').value = '';
    $('operator-token').value = '';
    saveSession(data);
    showBoard();
  } catch (_) {
    $('login-error').textContent = 'The dashboard is unreachable. Try again.';
  } finally {
    $('login-submit').disabled = false;
  }
}

function showLogin(message) {
  stopStream();
  saveSession(null);
  $('board').hidden = true;
  $('login').hidden = false;
  $('login-error').textContent = message || '';
}

function showBoard() {
  $('login').hidden = true;
  $('board').hidden = false;
  $('view-name').textContent = session.view === 'operator'
    ? 'Operator view · all merchants'
    : `Merchant view · ${session.merchant}`;
  $('merchants-card').hidden = session.view !== 'operator';
  scheduleRenew();
  connect();
  startWebhooks();
}

// ---- session renewal -------------------------------------------------------

function scheduleRenew() {
  clearTimeout(renewTimer);
  if (!session) return;
  const left = session.expires_at * 1000 - Date.now();
  renewTimer = setTimeout(renew, Math.max(5000, left / 3));
}

// Returns false when the session is over (the user must sign in again).
async function renew() {
  if (!session) return false;
  try {
    const res = await fetch('/api/session/renew', {
      method: 'POST',
      headers: { authorization: `Bearer ${session.token}` },
      cache: 'no-store',
    });
    if (res.status === 401) {
      showLogin('Your session has ended. Please sign in again.');
      return false;
    }
    if (res.ok) saveSession(await res.json());
  } catch (_) {
    // Network trouble: keep the current token and try again later.
  }
  scheduleRenew();
  return true;
}

// ---- stream ----------------------------------------------------------------

function setConn(state, text) {
  const el = $('conn');
  el.dataset.state = state;
  el.textContent = text;
}

function connect() {
  clearTimeout(reconnectTimer);
  if (!session) return;
  setConn(attempt === 0 ? 'connecting' : 'reconnecting', attempt === 0 ? 'Connecting…' : 'Reconnecting…');
  const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
  // The token rides in the sub-protocol list, not the URL: URLs get logged.
  const ws = new WebSocket(`${scheme}://${location.host}/ws`, [PROTOCOL, `bearer.${session.token}`]);
  socket = ws;
  let opened = false;
  ws.onopen = () => {
    opened = true;
    setConn('live', 'Live');
  };
  ws.onmessage = (event) => {
    attempt = 0;
    let frame;
    try {
      frame = JSON.parse(event.data);
    } catch (_) {
      return;
    }
    const now = Date.now();
    if (!stats.firstAt) stats.firstAt = now;
    stats.lastAt = now;
    stats.frames += 1;
    if (stats.lastSeq && frame.seq > stats.lastSeq + 1) stats.missed += frame.seq - stats.lastSeq - 1;
    stats.lastSeq = frame.seq;
    latest = frame;
    if ($('conn').dataset.state !== 'live') setConn('live', 'Live');
    render(frame);
  };
  ws.onclose = async (event) => {
    if (socket !== ws) return;
    socket = null;
    if (!session) return;
    // Expired, or refused at the upgrade: a fresh token may fix it.
    if (event.code === CLOSE_SESSION_EXPIRED || !opened) {
      if (!(await renew())) return;
    }
    scheduleReconnect();
  };
}

function scheduleReconnect() {
  attempt += 1;
  // Exponential backoff with jitter, 0.5 s to 15 s.
  const base = Math.min(15000, 500 * 2 ** Math.min(attempt - 1, 5));
  const delay = base / 2 + Math.random() * base / 2;
  let left = Math.ceil(delay / 1000);
  setConn('reconnecting', `Reconnecting in ${left}s`);
  const countdown = setInterval(() => {
    left -= 1;
    if (left > 0 && !socket) setConn('reconnecting', `Reconnecting in ${left}s`);
  }, 1000);
  reconnectTimer = setTimeout(() => {
    clearInterval(countdown);
    connect();
  }, delay);
}

function stopStream() {
  clearTimeout(reconnectTimer);
  clearTimeout(renewTimer);
  clearTimeout(webhooksTimer);
  webhooksTimer = null;
  if (socket) {
    const ws = socket;
    socket = null;
    ws.close(1000, 'signed out');
  }
}

// A connection that stops delivering (a dead proxy) is shown, not hidden.
setInterval(() => {
  if (socket && socket.readyState === WebSocket.OPEN && stats.lastAt && Date.now() - stats.lastAt > STALE_AFTER_MS) {
    setConn('stale', 'No data — waiting');
  }
  if (latest) renderFooter();
}, 1000);

window.addEventListener('offline', () => setConn('offline', 'Offline'));
window.addEventListener('online', () => {
  if (!socket && session) connect();
});

// ---- failing webhook endpoints -------------------------------------------------

// Polled, not streamed: the list changes at the notifier's pace (minutes),
// and one small query per page every few seconds is cheap. One request at a
// time; the next is scheduled only once the previous one has ended.
const WEBHOOKS_EVERY_MS = 5000;
let webhooksTimer = null;

function startWebhooks() {
  clearTimeout(webhooksTimer);
  webhooksTimer = setTimeout(pollWebhooks, 0);
}

async function pollWebhooks() {
  if (!session) return;
  try {
    const res = await fetch('/api/webhook-endpoints/failing', {
      headers: { authorization: `Bearer ${session.token}` },
      cache: 'no-store',
    });
    if (res.status === 401) {
      // Expired or revoked: renewing decides (and shows the login if over).
      if (!(await renew())) return;
    } else if (res.ok) {
      renderWebhooks(await res.json());
    } else {
      text($('webhooks-note'), `unavailable (${res.status})`);
    }
  } catch (_) {
    text($('webhooks-note'), 'unavailable');
  }
  if (session) webhooksTimer = setTimeout(pollWebhooks, WEBHOOKS_EVERY_MS);
}

function renderWebhooks(list) {
  const rows = list.data || [];
  $('webhooks-empty').hidden = rows.length > 0;
  const shown = `${fmtInt.format(rows.length)}${list.truncated ? '+' : ''} failing`;
  text($('webhooks-note'), `${shown} · updated ${fmtTime.format(new Date())}`);
  $('webhooks').replaceChildren(...rows.map((e) => {
    const tr = document.createElement('tr');
    tr.dataset.id = e.endpoint_id;
    const state = document.createElement('td');
    const badge = document.createElement('span');
    badge.className = `badge ${e.status === 'disabled' ? 'rejected' : 'failing'}`;
    badge.textContent = e.disabled_for_failing ? 'disabled (failing)' : e.status === 'disabled' ? 'disabled' : 'retrying';
    state.append(badge);
    tr.append(
      cell(e.account_id),
      cell(e.endpoint_id, 'id'),
      cell(e.url, 'id'),
      cell(e.failing_since ? new Date(e.failing_since).toLocaleString() : ''),
      cell(e.last_status_code == null ? '' : String(e.last_status_code), 'num'),
      cell(e.last_error),
      state,
    );
    return tr;
  }));
}

// ---- rendering ---------------------------------------------------------------

function text(el, value) {
  if (el.textContent !== value) el.textContent = value;
}

function render(f) {
  const t = f.totals;
  text($('kpi-total'), fmtInt.format(t.count));
  text($('kpi-approved'), fmtInt.format(t.approved));
  text($('kpi-rejected'), fmtInt.format(t.rejected));
  text($('kpi-rate'), t.approval_rate == null ? '–' : `${(t.approval_rate * 100).toFixed(1)}%`);
  text($('kpi-tps'), fmtRate.format(f.rate.per_sec));
  text($('kpi-volume'), fmtMoney.format(t.approved_amount_cents / 100));
  text($('updated'), `Updated ${fmtTime.format(new Date(f.server_time_ms))}`);
  renderReasons(f.rejections);
  if (f.top_merchants) renderMerchants(f.top_merchants, f.merchants_tracked);
  renderRecent(f.recent);
  drawChart(f.series);
}

function barItem(label, count, max, title) {
  const li = document.createElement('li');
  const name = document.createElement('span');
  name.textContent = label;
  if (title) name.title = title;
  const c = document.createElement('span');
  c.className = 'count';
  c.textContent = fmtInt.format(count);
  const bar = document.createElement('div');
  bar.className = 'bar';
  const fill = document.createElement('span');
  fill.style.width = `${max > 0 ? (100 * count) / max : 0}%`;
  bar.append(fill);
  li.append(name, c, bar);
  return li;
}

function humanReason(label) {
  return label.replace(/_/g, ' ').replace(/^./, (c) => c.toUpperCase());
}

function renderReasons(reasons) {
  const shown = reasons.filter((r) => r.count > 0).sort((a, b) => b.count - a.count);
  const max = shown.length ? shown[0].count : 0;
  const ul = $('reasons');
  if (!shown.length) {
    const li = document.createElement('li');
    li.className = 'muted';
    li.textContent = 'No rejections yet';
    ul.replaceChildren(li);
    return;
  }
  ul.replaceChildren(...shown.map((r) => barItem(humanReason(r.reason), r.count, max, r.message)));
}

function renderMerchants(list, tracked) {
  const max = list.length ? list[0].count : 0;
  $('merchants').replaceChildren(...list.map((m) => barItem(
    `${m.id} · ${m.approval_rate == null ? '–' : (m.approval_rate * 100).toFixed(0)}% approved`, m.count, max)));
  text($('merchants-tracked'), `${fmtInt.format(tracked || 0)} active`);
}

function cell(value, className) {
  const td = document.createElement('td');
  if (className) td.className = className;
  td.textContent = value == null || value === '' ? '–' : value;
  return td;
}

function renderRecent(rows) {
  $('empty').hidden = rows.length > 0;
  const body = $('recent');
  const trs = rows.map((r) => {
    const tr = document.createElement('tr');
    tr.dataset.id = r.id;
    const when = r.processed_at ? fmtTime.format(new Date(r.processed_at)) : '';
    const status = document.createElement('td');
    const badge = document.createElement('span');
    badge.className = `badge ${r.status}`;
    badge.textContent = r.status;
    status.append(badge);
    const card = r.card_masked ? `${r.card_brand ? r.card_brand + ' ' : ''}${r.card_masked}` : '';
    tr.append(
      cell(when),
      cell(r.id, 'id'),
      cell(r.merchant),
      cell(r.amount_cents == null ? '' : fmtMoney.format(r.amount_cents / 100), 'num'),
      cell(card, 'card'),
      status,
      cell(r.reason ? humanReason(r.reason) : ''),
    );
    tr.lastChild.title = r.reason || '';
    return tr;
  });
  body.replaceChildren(...trs);
}

function niceMax(v) {
  if (v <= 5) return 5;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 2.5, 5, 10]) if (m * p >= v) return m * p;
  return 10 * p;
}

function drawChart(series) {
  const canvas = $('chart');
  const dpr = window.devicePixelRatio || 1;
  const w = canvas.clientWidth;
  const h = canvas.clientHeight || 240;
  if (canvas.width !== Math.round(w * dpr) || canvas.height !== Math.round(h * dpr)) {
    canvas.width = Math.round(w * dpr);
    canvas.height = Math.round(h * dpr);
  }
  const ctx = canvas.getContext('2d');
  ctx.setTransform(dpr, 0, 0, dpr, 0, 0);
  ctx.clearRect(0, 0, w, h);
  const css = getComputedStyle(document.documentElement);
  const pad = { l: 48, r: 8, t: 8, b: 22 };
  const n = series.approved.length;
  const totals = series.approved.map((a, i) => a + series.rejected[i]);
  const peak = Math.max(0, ...totals);
  const top = niceMax(peak);
  const x = (i) => pad.l + ((w - pad.l - pad.r) * i) / Math.max(1, n - 1);
  const y = (v) => h - pad.b - ((h - pad.t - pad.b) * v) / top;

  ctx.font = '11px system-ui, sans-serif';
  ctx.fillStyle = css.getPropertyValue('--muted');
  ctx.strokeStyle = css.getPropertyValue('--line');
  ctx.lineWidth = 1;
  for (let k = 0; k <= 4; k += 1) {
    const v = (top * k) / 4;
    const yy = Math.round(y(v)) + 0.5;
    ctx.beginPath();
    ctx.moveTo(pad.l, yy);
    ctx.lineTo(w - pad.r, yy);
    ctx.stroke();
    ctx.textAlign = 'right';
    ctx.fillText(fmtInt.format(v), pad.l - 6, yy + 3);
  }
  for (let m = 5; m >= 0; m -= 1) {
    const i = n - 1 - m * 60;
    ctx.textAlign = m === 0 ? 'right' : 'center';
    if (i >= 0) ctx.fillText(m === 0 ? 'now' : `-${m}m`, x(i), h - 6);
  }

  const area = (upper, lower, color) => {
    ctx.beginPath();
    ctx.moveTo(x(0), y(upper[0]));
    for (let i = 1; i < n; i += 1) ctx.lineTo(x(i), y(upper[i]));
    for (let i = n - 1; i >= 0; i -= 1) ctx.lineTo(x(i), y(lower[i]));
    ctx.closePath();
    ctx.fillStyle = color;
    ctx.fill();
  };
  const zeros = new Array(n).fill(0);
  area(series.approved, zeros, css.getPropertyValue('--ok'));
  area(totals, series.approved, css.getPropertyValue('--bad'));
  text($('peak'), `· peak ${fmtInt.format(peak)}/s`);
}

function renderFooter() {
  const secs = (stats.lastAt - stats.firstAt) / 1000;
  const fps = secs > 0 ? (stats.frames - 1) / secs : 0;
  text($('footer'), `${fmtInt.format(stats.frames)} frames received · ${fps.toFixed(1)} frames/s · ${fmtInt.format(stats.missed)} skipped while busy`);
}

window.addEventListener('resize', () => {
  if (latest) drawChart(latest.series);
});

// ---- start -------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
  for (const b of document.querySelectorAll('.tabs button')) b.addEventListener('click', () => selectTab(b.dataset.kind));
  $('login-form').addEventListener('submit', submitLogin);
  $('logout').addEventListener('click', () => showLogin(''));
  if (session) showBoard();
  else showLogin('');
});
