// The Durable Streams demo page: reads one stream of this hub with the
// browser's own EventSource (GET <stream>?offset=…&live=sse) and shows its
// text as it arrives. What it has shown and the offset after it are kept in
// sessionStorage, together, at each control event: a reload (or a dropped
// connection, or the hub ending the read after a minute) goes on from that
// offset, so nothing is lost or shown twice.
//
// Query: stream (the stream's path, default /v1/stream/demo/1) and
// authorization (a subscriber token, when the hub runs without --anonymous;
// one typed into #token is kept in sessionStorage instead).
//
// Element ids (stable; the browser tests use them):
//   #state       data-state = connecting | open | reconnecting | done | error;
//                the text is "live" when open, "done" once the stream is
//                closed and read to its end, "waiting…" while it does not
//                exist, "not authorized" after a 401 or 403
//   #output      the stream's text
//   #offset      the offset after it (-1: the start)
//   #message     what the page waits for, or the hub's answer when it fails
//                (class "error"), e.g. a 401 asking for a token
//   #stream-url  the stream's URL
//   #open-form   #stream and #token, submitted with #open
//   #restart     forgets what this tab kept and reads from the start

const DEFAULT_STREAM = '/v1/stream/demo/1';
const MAX_BACKOFF_MS = 5000;

const $ = (sel) => document.querySelector(sel);
const session = {
  get(key) {
    try { return sessionStorage.getItem(key); } catch { return null; }
  },
  set(key, value) {
    try {
      if (value) sessionStorage.setItem(key, value);
      else sessionStorage.removeItem(key);
    } catch { /* storage disabled: a reload starts over */ }
  },
};

const params = new URLSearchParams(location.search);
const path = params.get('stream') || DEFAULT_STREAM;
const KEY = 'ssehub.stream ' + path;
const TOKEN_KEY = 'ssehub.streamToken';
let token = params.get('authorization') ?? session.get(TOKEN_KEY) ?? '';

// What the page has shown: text up to offset is kept (storage and screen
// agree); pending is shown but not kept yet, until its control event.
let { offset, text } = restore();
let pending = '';
let es = null; // the open EventSource
let attempt = 0; // bumped by every connect: stale callbacks do nothing
let failures = 0; // since the last control event, for the backoff
let timer = 0;

function restore() {
  try {
    const v = JSON.parse(session.get(KEY));
    if (typeof v?.offset === 'string' && typeof v?.text === 'string') return v;
  } catch { /* nothing kept, or not by this page */ }
  return { offset: '-1', text: '' };
}

function keep() {
  session.set(KEY, JSON.stringify({ offset, text }));
}

const STATE_TEXT = { connecting: 'connecting…', open: 'live', reconnecting: 'reconnecting…', done: 'done', error: 'error' };

function setState(state, label) {
  const pill = $('#state');
  pill.dataset.state = state;
  pill.textContent = label ?? STATE_TEXT[state];
}

function say(msg, error) {
  const m = $('#message');
  m.textContent = msg;
  m.className = error ? 'error' : 'empty';
  m.hidden = !msg;
}

function render() {
  $('#output').textContent = text + pending;
  $('#offset').textContent = offset;
}

function streamURL(query) {
  const u = new URL(path, location.origin);
  for (const [k, v] of Object.entries(query)) u.searchParams.set(k, v);
  if (token) u.searchParams.set('authorization', token);
  return u;
}

// base64 turns a binary stream's data event into text (a stream of
// another content type than text/* and application/json).
const decoder = new TextDecoder();
function base64(data) {
  const bin = atob(data.replace(/[\r\n]/g, ''));
  return decoder.decode(Uint8Array.from(bin, (c) => c.charCodeAt(0)), { stream: true });
}

function retry(msg, label) {
  failures++;
  const delay = Math.min(MAX_BACKOFF_MS, 250 * 2 ** (failures - 1)) * (0.8 + 0.4 * Math.random());
  setState('reconnecting', label);
  if (msg) say(msg, true);
  timer = setTimeout(connect, delay);
}

function stop() {
  attempt++;
  clearTimeout(timer);
  es?.close();
  es = null;
}

// connect asks for the stream's tail first (offset=now: no data), which
// says whether it exists, whether the token is good, and its content type;
// then it reads from the kept offset with EventSource.
async function connect() {
  stop();
  const mine = attempt;
  if (failures === 0) setState('connecting');
  let res;
  try {
    res = await fetch(streamURL({ offset: 'now' }), { cache: 'no-store' });
  } catch (err) {
    if (mine === attempt) retry(`Cannot reach the hub (${err.message}); retrying.`);
    return;
  }
  if (mine !== attempt) return;
  if (!res.ok) {
    const why = (await res.text().catch(() => '')).trim() || res.statusText;
    if (mine !== attempt) return;
    const msg = why.startsWith(String(res.status)) ? why : `${res.status}: ${why}`;
    if (res.status === 401 || res.status === 403) {
      setState('error', 'not authorized');
      say(`${msg}\nGive a subscriber token below, or add ?authorization=<token> to this page's URL.`, true);
      $('#token').focus();
    } else if (res.status === 404) {
      failures = Math.max(failures, 3); // a stream appears by itself only so fast
      retry(`${msg}\nWaiting for the stream to be created (see "Try it").`, 'waiting…');
    } else if (res.status === 410 || (res.status >= 400 && res.status < 500 && res.status !== 429)) {
      setState('error');
      say(msg, true);
    } else {
      retry(`${msg}; retrying.`);
    }
    return;
  }
  const type = res.headers.get('Content-Type') || '';
  const binary = !/^\s*(text\/|application\/json\s*(;|$))/i.test(type); // as the hub decides

  const src = es = new EventSource(streamURL({ offset, live: 'sse' }));
  src.addEventListener('data', (e) => {
    if (src !== es) return;
    const s = binary ? base64(e.data) : e.data;
    pending += s;
    $('#output').append(s);
  });
  src.addEventListener('control', (e) => {
    if (src !== es) return;
    let c;
    try {
      c = JSON.parse(e.data);
    } catch {
      return;
    }
    if (typeof c?.streamNextOffset !== 'string') return;
    text += pending;
    pending = '';
    offset = c.streamNextOffset;
    keep();
    $('#offset').textContent = offset;
    failures = 0;
    if (c.streamClosed) {
      // The end: no reconnection (the protocol forbids it).
      stop();
      setState('done');
      say(text ? '' : 'The stream is closed, and empty.');
      return;
    }
    setState('open');
    say(text ? '' : 'Up to date: waiting for the first append.');
  });
  src.addEventListener('error', () => {
    if (src !== es) return;
    // The hub ended the read (it does every minute) or the connection
    // dropped. EventSource would come back with the URL it started with;
    // come back from the offset kept instead, dropping what was shown
    // without its control event: it is read again.
    stop();
    if (pending) {
      pending = '';
      render();
    }
    retry();
  });
}

function setupForm() {
  $('#stream').value = path;
  $('#token').value = token;
  $('#open-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const next = $('#stream').value.trim();
    token = $('#token').value.trim();
    session.set(TOKEN_KEY, token);
    if (next !== path) {
      location.search = '?' + new URLSearchParams({ stream: next });
      return;
    }
    failures = 0;
    say('');
    connect();
  });
  $('#restart').addEventListener('click', () => {
    stop();
    offset = '-1';
    text = '';
    pending = '';
    session.set(KEY, '');
    render();
    failures = 0;
    say('');
    connect();
  });
}

function showHint() {
  const u = new URL(path, location.origin).href;
  $('#stream-url').textContent = u;
  $('#hint').textContent = [
    `# with ssehub serve --anonymous-writes (else add -H 'Authorization: Bearer <publisher token>')`,
    `curl -X PUT -H 'Content-Type: text/plain' ${u}`,
    `for w in Hello, this text arrives token by token.; do`,
    `  curl -X POST -H 'Content-Type: text/plain' --data-binary "$w " ${u}; sleep 0.3`,
    `done`,
    `curl -X POST -H 'Stream-Closed: true' ${u}`,
  ].join('\n');
}

if (!path.startsWith('/') || path.startsWith('//')) {
  setState('error');
  say(`The stream must be a path on this hub, like ${DEFAULT_STREAM} (got ${path}).`, true);
  setupForm();
  $('#restart').disabled = true;
} else {
  showHint();
  setupForm();
  render();
  say(text ? '' : 'Nothing received yet.');
  connect();
}
