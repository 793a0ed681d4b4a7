// ssehub.js: subscribe to an ssehub (Mercure) hub from a browser or Node,
// with EventSource when there is one and long polling when there is not or
// when a proxy buffers the stream. Plain modern JavaScript, no dependencies.
// Served by every hub at /ssehub.js; also the npm package "ssehub".

const GAP = 'ssehub.gap';
const RECONNECT = 'ssehub.reconnect';

/**
 * Connection state of a subscription:
 * - `connecting`: the first connection is being made;
 * - `open`: connected, events flow (long polling: the last poll answered);
 * - `reconnecting`: the connection dropped or the hub asked to come back
 *   later; the helper is waiting or reconnecting by itself;
 * - `closed`: for good (close() was called, or the hub refused the
 *   subscription: see handlers.onError).
 * @typedef {'connecting'|'open'|'reconnecting'|'closed'} State
 */

/**
 * An event received from the hub.
 * @typedef {object} HubEvent
 * @property {string} id the event's id (the position to resume from)
 * @property {string} type the event type, `message` unless the publisher set one
 * @property {string} data the event's data, as published
 * @property {string[]} [topics] the event's topics, only when a long-poll
 *   answer carries them (ssehub's does not, nor does the event stream)
 */

/**
 * A gap: the hub could not replay everything after the last event id (history
 * expired, unknown id, or more than the replay limit). Events resume after
 * `resumedAfter`; what lies between is lost for this client.
 * @typedef {object} Gap
 * @property {string} id the id of the gap event (= resumedAfter)
 * @property {string} reason `expired`, `unknown`, `replay_limit` or `damaged`
 * @property {string} requested the last event id the client asked to resume from
 * @property {string} resumedAfter the id after which the replay starts
 */

/**
 * @typedef {object} Handlers
 * @property {(event: HubEvent) => void} [onEvent] every event of type
 *   `message` or one of options.types (see Subscription.addType); reserved
 *   `ssehub.*` events are not passed here.
 * @property {(gap: Gap) => void} [onGap] a gap in the history (`ssehub.gap`).
 * @property {(state: State) => void} [onState] every change of state.
 * @property {(error: Error & {status?: number}) => void} [onError] an error the
 *   helper can describe (an HTTP status and the hub's message, when known).
 *   The helper keeps retrying unless the state becomes `closed`.
 */

/**
 * @typedef {object} Options
 * @property {string | (() => string | Promise<string>)} [token] subscriber
 *   JWT, sent as the `authorization` query parameter. A function is called on
 *   every connection the helper makes itself, so it can hand out a fresh
 *   token (a 401 is then retried instead of being final).
 * @property {boolean} [withCredentials] send cookies (e.g. a
 *   `mercureAuthorization` cookie) to a hub on another origin.
 * @property {string} [lastEventId] resume after this id (default: only new events).
 * @property {string[]} [types] custom event types to receive besides
 *   `message`: an EventSource only reports the types it listens for.
 * @property {number} [pollTimeout] how long, in ms, one long poll may wait
 *   for events (the hub caps it). Default 25000.
 * @property {number} [bufferTimeout] ms without any event on an EventSource
 *   before the helper checks, with a quick poll, whether the stream is being
 *   held back by a buffering proxy (it switches to long polling if the poll
 *   has events the stream did not deliver); also how long a connection
 *   attempt may hang without an answer. 0 disables the check. Default 35000.
 * @property {number} [jitter] the maximum random delay, in ms, added to a
 *   reconnection time the hub asks for. Default: a tenth of that time, at least 1000.
 * @property {(typeof EventSource) | null} [EventSource] the EventSource
 *   implementation; default `globalThis.EventSource`. `null` forces long polling.
 */

/**
 * @typedef {object} Subscription
 * @property {() => void} close stop for good.
 * @property {(type: string) => void} addType receive events of one more
 *   custom type from now on (no reconnection needed).
 * @property {State} state the current state.
 * @property {string | null} lastEventId the id of the last event received
 *   (where a reconnection resumes).
 * @property {'eventsource' | 'poll'} mode the transport in use.
 */

/**
 * Subscribes to the topics of a hub and keeps the subscription alive: it
 * reconnects with the last event id after any failure (so no event is lost
 * or repeated), switches to long polling when EventSource is missing or the
 * stream appears buffered, and honours the hub's `ssehub.reconnect`
 * instruction (closes, waits the time it gives plus jitter, resumes).
 *
 * @param {string | URL} hubURL the hub's Mercure URL, e.g. `/.well-known/mercure`
 *   (relative URLs resolve against the page).
 * @param {string | string[]} topics topic selectors: exact topics, `*`, or URI templates.
 * @param {Handlers} [handlers]
 * @param {Options} [options]
 * @returns {Subscription}
 */
export function subscribe(hubURL, topics, handlers = {}, options = {}) {
  topics = [].concat(topics);
  if (!topics.length) throw new TypeError('ssehub: at least one topic selector is required');
  const ES = 'EventSource' in options ? options.EventSource : globalThis.EventSource;
  const types = new Set(['message', ...(options.types || [])]);
  const bufferTimeout = options.bufferTimeout ?? 35000;
  const pollTimeout = options.pollTimeout ?? 25000;

  let state = null;
  let mode = ES ? 'eventsource' : 'poll';
  let cursor = options.lastEventId || null; // last event id received
  let base = null; // the hub's position when the stream had no cursor yet
  let closed = false;
  let gen = 0; // bumped whenever the transport is torn down
  let es = null;
  let listener = null;
  let timer = null; // the next connection
  let watchTimer = null; // the EventSource watchdog
  let opened = false; // the current EventSource has been open
  let seen = 0; // events received on the stream
  let failures = 0; // consecutive failures, for backoff
  const inflight = new Set(); // AbortControllers of pending requests

  const call = (fn, arg) => {
    try {
      fn?.(arg);
    } catch (err) {
      setTimeout(() => { throw err; }); // report it, but keep running
    }
  };
  const setState = (s) => {
    if (s !== state) {
      state = s;
      call(handlers.onState, s);
    }
  };

  const url = (params, token) => {
    const u = new URL(hubURL, globalThis.location?.href);
    for (const t of topics) u.searchParams.append('topic', t);
    if (token) u.searchParams.set('authorization', token);
    for (const [k, v] of Object.entries(params)) u.searchParams.set(k, v);
    return u.href;
  };
  const getToken = async () =>
    typeof options.token === 'function' ? options.token() : options.token;

  // One long poll; resolves to the hub's JSON answer, rejects with an Error
  // carrying .status (and .retryAfter in ms) for an HTTP error.
  const request = async (from, timeout, limit) => {
    const ctl = new AbortController();
    inflight.add(ctl);
    const t = setTimeout(() => ctl.abort(), limit);
    try {
      const params = { poll: '1', timeout: String(timeout) };
      if (from != null) params.lastEventID = from;
      const res = await fetch(url(params, await getToken()), {
        headers: { Accept: 'application/json' },
        credentials: options.withCredentials ? 'include' : 'same-origin',
        cache: 'no-store',
        signal: ctl.signal,
      });
      if (!res.ok) {
        const msg = (await res.text().catch(() => '')).trim();
        const err = new Error(msg || `HTTP ${res.status}`);
        err.status = res.status;
        const ra = Number(res.headers.get('Retry-After'));
        if (ra > 0) err.retryAfter = ra * 1000;
        throw err;
      }
      if (!/json/.test(res.headers.get('Content-Type') || '')) {
        throw new Error('ssehub: the hub did not answer a long poll with JSON');
      }
      return await res.json();
    } finally {
      clearTimeout(t);
      ctl.abort(); // releases an unread body
      inflight.delete(ctl);
    }
  };

  const stop = () => {
    gen++;
    clearTimeout(timer);
    clearTimeout(watchTimer);
    if (es) {
      es.close();
      es = null;
    }
    for (const ctl of inflight) ctl.abort();
    inflight.clear();
  };
  const later = (ms, fn) => {
    clearTimeout(timer);
    const g = gen;
    timer = setTimeout(() => {
      if (g === gen && !closed) fn();
    }, ms);
  };
  const backoff = () => {
    const d = Math.min(30000, 1000 * 2 ** Math.min(failures - 1, 5));
    return d / 2 + (Math.random() * d) / 2;
  };
  const close = () => {
    closed = true;
    stop();
    setState('closed');
  };

  // failed handles an error of a connection the helper made itself.
  const failed = (err) => {
    if (closed) return;
    call(handlers.onError, err);
    const s = err.status;
    if (s >= 400 && s < 500 && s !== 408 && s !== 429 &&
        !(s === 401 && typeof options.token === 'function')) {
      return close(); // retrying cannot help: the hub said no
    }
    failures++;
    stop();
    setState('reconnecting');
    later(err.retryAfter ?? backoff(), connect);
  };

  // comeBack honours ssehub.reconnect: close, wait, resume from the cursor.
  const comeBack = (data) => {
    let ms = 1000;
    try {
      const v = JSON.parse(data).retry_ms;
      if (Number.isFinite(v) && v >= 0) ms = v;
    } catch { /* keep the default */ }
    const jitter = options.jitter ?? Math.max(1000, ms / 10);
    stop();
    setState('reconnecting');
    later(ms + Math.random() * jitter, connect);
  };

  const emit = (type, id, data, topics) => {
    if (id) cursor = id;
    if (type === GAP) {
      let g = {};
      try { g = JSON.parse(data); } catch { /* report what we have */ }
      call(handlers.onGap, { id, reason: g.reason, requested: g.requested, resumedAfter: g.resumed_after ?? id });
    } else if (type === RECONNECT) {
      comeBack(data);
    } else if (types.has(type)) {
      call(handlers.onEvent, topics ? { id, type, data, topics } : { id, type, data });
    }
  };

  // --- long polling ---

  const poll = async () => {
    const g = gen;
    // Until a poll has answered, ask for an immediate answer: the state
    // becomes open without waiting a whole poll on a quiet topic.
    const timeout = state === 'open' ? pollTimeout : 1;
    let r;
    try {
      r = await request(cursor, timeout, timeout + 15000);
    } catch (err) {
      if (g === gen) failed(err);
      return;
    }
    if (g !== gen || closed) return;
    failures = 0;
    setState('open');
    for (const ev of r.events || []) {
      emit(ev.type || 'message', ev.id || '', ev.data ?? '', ev.topics);
      if (g !== gen || closed) return; // reconnect asked, or closed by a handler
    }
    if (cursor == null && r.last_event_id) cursor = r.last_event_id;
    later(0, poll);
  };

  // --- EventSource ---

  const toPoll = () => {
    stop();
    mode = 'poll';
    cursor ??= base; // resume where the stream started, not "only new events"
    setState('reconnecting');
    connect();
  };

  // watch arms the watchdog: an attempt that hangs, or a stream that stays
  // silent while the hub has events for it, means a proxy is buffering.
  const watch = (ms = bufferTimeout) => {
    if (!(bufferTimeout > 0)) return;
    clearTimeout(watchTimer);
    const g = gen;
    watchTimer = setTimeout(() => { if (g === gen) check(); }, ms);
  };
  const check = async () => {
    if (es.readyState !== 1) {
      if (!opened) toPoll(); // the first attempt got no answer at all
      return; // otherwise the browser is reconnecting; onopen re-arms
    }
    const g = gen;
    const before = seen;
    const from = cursor ?? base;
    let r;
    try {
      r = await request(from, 1, 5000);
    } catch {
      if (g === gen) watch();
      return;
    }
    if (g !== gen) return;
    if (from == null) {
      base = r.last_event_id || null;
      return watch();
    }
    const missed = (r.events || []).some((ev) => types.has(ev.type || 'message'));
    if (seen !== before || !missed) return watch();
    // The hub has events the stream did not deliver: give the stream a
    // moment in case they were just in flight.
    watchTimer = setTimeout(() => {
      if (g === gen) seen === before ? toPoll() : watch();
    }, Math.min(2000, bufferTimeout));
  };

  // broken handles an EventSource the browser gave up on (an HTTP error or
  // a wrong content type): ask the hub what is wrong with a quick poll.
  const broken = async () => {
    stop();
    setState('reconnecting');
    const g = gen;
    let polled = false;
    try {
      await request(cursor, 1, 5000);
      polled = true;
    } catch (err) {
      if (g === gen && err.status) return failed(err);
    }
    if (g !== gen || closed) return;
    // Polling works but the stream failed twice in a row without opening
    // (say, a proxy that mangles streams): poll from now on.
    if (polled && failures >= 1) return toPoll();
    failures++;
    later(backoff(), connect);
  };

  const openES = (token) => {
    const params = cursor != null ? { lastEventID: cursor } : {};
    const cur = new ES(url(params, token), { withCredentials: !!options.withCredentials });
    es = cur;
    opened = false;
    listener = (e) => {
      if (cur !== es) return;
      seen++;
      watch();
      emit(e.type, e.lastEventId, e.data);
    };
    for (const t of [...types, GAP, RECONNECT]) cur.addEventListener(t, listener);
    cur.onopen = () => {
      if (cur !== es) return;
      opened = true;
      failures = 0;
      setState('open');
      // Without a cursor, learn the hub's position now: events after it are
      // what the stream must deliver.
      watch(cursor == null && base == null ? 0 : bufferTimeout);
    };
    cur.onerror = () => {
      if (cur !== es) return;
      if (cur.readyState === 2) return broken();
      setState('reconnecting'); // the browser reconnects with Last-Event-ID
      if (!opened) watch();
    };
    watch();
  };

  const connect = async () => {
    if (closed) return;
    if (state == null) setState('connecting');
    if (mode === 'poll') return poll();
    const g = gen;
    let token;
    try {
      token = await getToken();
    } catch (err) {
      if (g === gen) failed(err);
      return;
    }
    if (g === gen && !closed) openES(token);
  };

  queueMicrotask(connect);

  return {
    close,
    addType(type) {
      if (types.has(type)) return;
      types.add(type);
      if (es && listener) es.addEventListener(type, listener);
    },
    get state() { return state ?? 'connecting'; },
    get lastEventId() { return cursor; },
    get mode() { return mode; },
  };
}

/**
 * An update to publish.
 * @typedef {object} Update
 * @property {string | string[]} topic the topic (or topics; the first is canonical)
 * @property {string} [data] the event's data
 * @property {string} [type] the event type (default `message`)
 * @property {string} [id] the event's id (default: assigned by the hub)
 * @property {boolean} [private] deliver only to subscribers authorized for a topic
 * @property {number} [retry] reconnection time, in ms, for the subscribers
 */

/**
 * Publishes an update to a hub (`POST`, form-encoded).
 * @param {string | URL} hubURL the hub's Mercure URL
 * @param {string} token a publisher JWT (sent as `Authorization: Bearer`);
 *   empty to rely on a cookie
 * @param {Update} update
 * @returns {Promise<string>} the event's id
 * @throws {Error & {status: number}} with the hub's message when it refuses
 */
export async function publish(hubURL, token, update) {
  const body = new URLSearchParams();
  for (const t of [].concat(update.topic ?? [])) body.append('topic', t);
  if (update.data != null) body.set('data', String(update.data));
  if (update.type) body.set('type', update.type);
  if (update.id) body.set('id', update.id);
  if (update.retry != null) body.set('retry', String(update.retry));
  if (update.private) body.set('private', 'on');
  const res = await fetch(new URL(hubURL, globalThis.location?.href), {
    method: 'POST',
    headers: token ? { Authorization: `Bearer ${token}` } : {},
    body,
    credentials: token ? 'same-origin' : 'include', // no token: a cookie
  });
  const text = (await res.text()).trim();
  if (!res.ok) {
    const err = new Error(text || `HTTP ${res.status}`);
    err.status = res.status;
    throw err;
  }
  return text;
}
