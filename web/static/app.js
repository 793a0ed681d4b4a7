// The ssehub dashboard: live numbers and a chart from the hub's stats stream,
// a publish form, and a live log of the events on chosen topics.
//
// Element ids (stable; the browser tests use them):
//   #stats-state         the stats stream's state: data-state = connecting |
//                        open | reconnecting | closed ("not connected")
//   #stat-subscribers    connected subscribers
//   #stat-publish-rate   publishes per second
//   #stat-delivery-rate  deliveries per second
//   #stat-published, #stat-delivered, #stat-replayed, #stat-gaps, #stat-slow
//                        totals since the hub started
//   #chart               <svg>: the last 5 minutes of the three series
//   #publish-form        the publish form, with #publish-topic, #publish-type,
//                        #publish-id, #publish-data, #publish-private,
//                        #publish-token (kept in localStorage),
//                        #publish-submit, and #publish-result (the event id,
//                        or the hub's error message with class "error")
//   #log-form            the live log's form, with #log-topic (space-separated
//                        selectors), #log-types (custom event types),
//                        #log-token (kept in localStorage), #log-last-id
//                        (resume after this id), #log-connect (Connect /
//                        Disconnect), #log-clear, #log-error
//   #state               the log's connection state: text and data-state =
//                        connecting | open | reconnecting | closed
//   #log-mode            the transport: "EventSource" or "long polling"
//   #log                 newest first, one <li class="event"> per event with
//                        data-id, data-type and the children .event-time,
//                        .event-id, .event-type, .event-data; a gap is
//                        <li class="event gap">
//
// The hub is at this origin's /.well-known/mercure (well-known URIs live at
// the root of an origin, RFC 8615), wherever the dashboard is mounted.

import { subscribe, publish } from './ssehub.js';

const HUB = '/.well-known/mercure';
const STATS = '/.well-known/ssehub/stats';
const WINDOW_MS = 5 * 60 * 1000;
const MAX_ROWS = 500;

const $ = (sel) => document.querySelector(sel);
const store = {
  get(key) {
    try { return localStorage.getItem('ssehub.' + key) ?? ''; } catch { return ''; }
  },
  set(key, value) {
    try {
      if (value) localStorage.setItem('ssehub.' + key, value);
      else localStorage.removeItem('ssehub.' + key);
    } catch { /* storage disabled: nothing to keep */ }
  },
};

const int = new Intl.NumberFormat();
const fmtInt = (v) => (Number.isFinite(v) ? int.format(v) : '—');
const fmtRate = (v) => (v >= 100 ? int.format(Math.round(v)) : v.toFixed(1));

// ---------------------------------------------------------------- stats --

const samples = []; // {t, subs, pub, del}
let prev = null; // the previous stats event

function setPill(el, state, text) {
  el.dataset.state = state;
  el.textContent = text;
}

function onStats(s) {
  const t = Number(s.time) || Date.now();
  let pub = 0;
  let del = 0;
  if (prev && t > prev.time && s.published >= prev.published && s.delivered >= prev.delivered) {
    const dt = (t - prev.time) / 1000;
    pub = (s.published - prev.published) / dt;
    del = (s.delivered - prev.delivered) / dt;
  }
  prev = { time: t, published: s.published, delivered: s.delivered };
  samples.push({ t, subs: Number(s.subscribers) || 0, pub, del });
  while (samples.length && samples[0].t < t - WINDOW_MS) samples.shift();

  $('#stat-subscribers').textContent = fmtInt(s.subscribers);
  $('#stat-publish-rate').textContent = fmtRate(pub);
  $('#stat-delivery-rate').textContent = fmtRate(del);
  $('#stat-published').textContent = fmtInt(s.published);
  $('#stat-delivered').textContent = fmtInt(s.delivered);
  $('#stat-replayed').textContent = fmtInt(s.replayed);
  $('#stat-gaps').textContent = fmtInt(s.gaps);
  $('#stat-slow').textContent = fmtInt(s.slow);
  drawChart();
}

function clearStats() {
  for (const id of ['subscribers', 'publish-rate', 'delivery-rate']) {
    $('#stat-' + id).textContent = '—';
  }
  prev = null;
}

let stats = null; // the stats stream's EventSource
let statsToken = null; // the subscriber token it was opened with
let statsRetry = 0;
const STATS_TITLE = "The dashboard's own stats stream";

// connectStats follows the stats stream with the live log's subscriber
// token: a hub that requires subscriber tokens requires one for its stats
// too (any will do). A hub that refuses it, has no stats stream, or a
// dashboard served without a hub, shows "not connected" and is retried now
// and then.
function connectStats() {
  clearTimeout(statsRetry);
  stats?.close();
  const pill = $('#stats-state');
  const token = $('#log-token').value.trim();
  statsToken = token;
  const es = new EventSource(token ? `${STATS}?authorization=${encodeURIComponent(token)}` : STATS);
  stats = es;
  const open = () => {
    pill.title = STATS_TITLE;
    if (pill.dataset.state !== 'open') setPill(pill, 'open', 'live');
  };
  es.addEventListener('stats', (e) => {
    try {
      onStats(JSON.parse(e.data));
    } catch {
      return; // a malformed sample: wait for the next one
    }
    open();
  });
  es.onopen = open;
  es.onerror = () => {
    if (stats !== es) return;
    if (es.readyState === EventSource.CLOSED) {
      setPill(pill, 'closed', 'not connected');
      pill.title = token
        ? 'The hub cannot be reached, or refused the subscriber token of the live log'
        : 'The hub cannot be reached, or needs a subscriber token: give one in the live log and connect';
      clearStats();
      statsRetry = setTimeout(connectStats, 5000);
    } else {
      setPill(pill, 'reconnecting', 'reconnecting…');
    }
  };
}

// ---------------------------------------------------------------- chart --

const SVG = 'http://www.w3.org/2000/svg';
const SERIES = [
  { key: 'subs', label: 'subscribers', cls: 'subs', fmt: (v) => int.format(Math.round(v)) },
  { key: 'pub', label: 'publishes/s', cls: 'pub', fmt: fmtRate },
  { key: 'del', label: 'deliveries/s', cls: 'del', fmt: fmtRate },
];

function el(name, attrs, text) {
  const e = document.createElementNS(SVG, name);
  for (const [k, v] of Object.entries(attrs)) e.setAttribute(k, v);
  if (text != null) e.textContent = text;
  return e;
}

// niceMax rounds a maximum up to 1, 2 or 5 times a power of ten.
function niceMax(v) {
  if (!(v > 0)) return 1;
  const p = 10 ** Math.floor(Math.log10(v));
  for (const m of [1, 2, 5, 10]) if (v <= m * p) return m * p;
  return 10 * p;
}

function drawChart() {
  const svg = $('#chart');
  const w = Math.max(280, Math.round(svg.getBoundingClientRect().width || 600));
  const laneH = 56;
  const gap = 14;
  const axis = 18;
  const left = 8;
  const right = 8;
  const h = SERIES.length * (laneH + gap) + axis;
  svg.setAttribute('viewBox', `0 0 ${w} ${h}`);
  svg.setAttribute('height', h);
  const now = samples.length ? samples[samples.length - 1].t : Date.now();
  const plotW = w - left - right;
  const x = (t) => left + plotW - ((now - t) / WINDOW_MS) * plotW;
  const parts = [];

  SERIES.forEach((s, i) => {
    const top = i * (laneH + gap) + 4;
    const max = niceMax(Math.max(0, ...samples.map((p) => p[s.key])));
    const y = (v) => top + laneH - (v / max) * laneH;
    parts.push(el('line', { class: 'grid', x1: left, x2: w - right, y1: top + laneH, y2: top + laneH }));
    parts.push(el('line', { class: 'grid faint', x1: left, x2: w - right, y1: top, y2: top }));
    if (samples.length > 1) {
      const pts = samples.map((p) => `${x(p.t).toFixed(1)},${y(p[s.key]).toFixed(1)}`);
      const first = x(samples[0].t).toFixed(1);
      const last = x(now).toFixed(1);
      parts.push(el('path', { class: `area ${s.cls}`, d: `M${first},${top + laneH} L${pts.join(' L')} L${last},${top + laneH} Z` }));
      parts.push(el('path', { class: `line ${s.cls}`, d: `M${pts.join(' L')}` }));
    }
    const cur = samples.length ? s.fmt(samples[samples.length - 1][s.key]) : '—';
    parts.push(el('text', { class: 'lane-label', x: left + 4, y: top + 12 }, `${s.label}  ${cur}`));
    parts.push(el('text', { class: 'lane-max', x: w - right - 4, y: top + 12, 'text-anchor': 'end' }, `max ${s.fmt(max)}`));
  });

  const base = h - 4;
  for (const [m, label] of [[5, '−5 min'], [4, '−4'], [3, '−3'], [2, '−2'], [1, '−1'], [0, 'now']]) {
    const anchor = m === 5 ? 'start' : m === 0 ? 'end' : 'middle';
    parts.push(el('text', { class: 'axis', x: x(now - m * 60000), y: base, 'text-anchor': anchor }, label));
  }
  if (samples.length < 2) {
    parts.push(el('text', { class: 'chart-empty', x: w / 2, y: (h - axis) / 2, 'text-anchor': 'middle' },
      prev ? 'collecting samples…' : 'waiting for the hub’s stats stream'));
  }
  svg.replaceChildren(...parts);
}

// -------------------------------------------------------------- publish --

function setupPublish() {
  const form = $('#publish-form');
  const token = $('#publish-token');
  const topic = $('#publish-topic');
  const result = $('#publish-result');
  token.value = store.get('publisherToken');
  topic.value = store.get('publishTopic') || 'greetings';
  token.addEventListener('change', () => store.set('publisherToken', token.value.trim()));

  form.addEventListener('submit', async (e) => {
    e.preventDefault();
    const type = $('#publish-type').value.trim();
    const update = {
      topic: topic.value.trim(),
      data: $('#publish-data').value,
      type,
      id: $('#publish-id').value.trim(),
      private: $('#publish-private').checked,
    };
    store.set('publisherToken', token.value.trim());
    store.set('publishTopic', update.topic);
    if (type) listenFor(type); // so the log shows it
    const button = $('#publish-submit');
    button.disabled = true;
    result.className = 'pending';
    result.textContent = 'publishing…';
    try {
      const id = await publish(HUB, token.value.trim(), update);
      result.className = 'ok';
      result.textContent = `published, id ${id}`;
    } catch (err) {
      result.className = 'error';
      result.textContent = err.status ? describe(err) : `could not reach the hub: ${err.message}`;
    } finally {
      button.disabled = false;
    }
  });
}

// ------------------------------------------------------------------ log --

let sub = null;
const learned = new Set(); // custom types published from this page

// describe formats an error of the helper: the HTTP status and the hub's
// message when the hub answered.
function describe(err) {
  if (!err.status) return err.message;
  return err.message.startsWith(String(err.status)) ? err.message : `${err.status}: ${err.message}`;
}

const STATE_TEXT = { connecting: 'connecting…', open: 'open', reconnecting: 'reconnecting…', closed: 'closed' };

function showState(state) {
  setPill($('#state'), state, STATE_TEXT[state] ?? state);
  $('#log-mode').textContent = sub && state !== 'closed' ? (sub.mode === 'poll' ? 'long polling' : 'EventSource') : '';
  $('#log-connect').textContent = sub && state !== 'closed' ? 'Disconnect' : 'Connect';
}

function listenFor(type) {
  learned.add(type);
  sub?.addType(type);
}

function addRow({ id, type, data }, gap) {
  const li = document.createElement('li');
  li.className = gap ? 'event gap' : 'event';
  li.dataset.id = id;
  li.dataset.type = type;
  const cell = (cls, text) => {
    const e = document.createElement(cls === 'event-data' ? 'pre' : 'span');
    e.className = cls;
    e.textContent = text;
    li.append(e);
  };
  cell('event-time', new Date().toLocaleTimeString([], { hourCycle: 'h23' }));
  cell('event-id', id || '—');
  cell('event-type', type);
  cell('event-data', data);
  const log = $('#log');
  log.prepend(li);
  while (log.children.length > MAX_ROWS) log.lastElementChild.remove();
  $('#log-empty').hidden = true;
}

function splitList(s) {
  return s.split(/[\s,]+/).filter(Boolean);
}

function connectLog() {
  sub?.close();
  sub = null;
  const topics = splitList($('#log-topic').value);
  const token = $('#log-token').value.trim();
  const lastEventId = $('#log-last-id').value.trim();
  store.set('subscriberToken', token);
  if (token !== statsToken) connectStats(); // the stats stream uses it too
  store.set('logTopic', $('#log-topic').value.trim());
  store.set('logTypes', $('#log-types').value.trim());
  $('#log-error').textContent = '';
  if (!topics.length) {
    $('#log-error').textContent = 'Give at least one topic selector (* for every topic).';
    return;
  }
  const types = [...new Set([...splitList($('#log-types').value), ...learned])];
  const s = subscribe(HUB, topics, {
    onEvent: (ev) => addRow(ev, false),
    onGap: (g) => addRow({
      id: g.id,
      type: 'ssehub.gap',
      data: `history gap (${g.reason}): asked to resume after ${g.requested}, resumed after ${g.resumedAfter}`,
    }, true),
    onState: (state) => {
      if (sub === s) showState(state);
      if (state === 'open') $('#log-error').textContent = '';
    },
    onError: (err) => {
      if (sub === s) $('#log-error').textContent = describe(err);
    },
  }, { token, types, lastEventId: lastEventId || undefined });
  sub = s;
  showState(s.state);
}

function setupLog() {
  $('#log-token').value = store.get('subscriberToken');
  $('#log-topic').value = store.get('logTopic') || '*';
  $('#log-types').value = store.get('logTypes');
  $('#log-form').addEventListener('submit', (e) => {
    e.preventDefault();
    if (sub && sub.state !== 'closed') {
      sub.close();
      showState('closed');
      sub = null;
    } else {
      connectLog();
    }
  });
  $('#log-clear').addEventListener('click', () => {
    $('#log').replaceChildren();
    $('#log-empty').hidden = false;
  });
  connectLog();
}

// ----------------------------------------------------------------- main --

$('#hub-url').textContent = new URL(HUB, location.href).href;
setupPublish();
setupLog(); // connects the stats stream with the log's token
drawChart();
let resizing = 0;
addEventListener('resize', () => {
  cancelAnimationFrame(resizing);
  resizing = requestAnimationFrame(drawChart);
});
