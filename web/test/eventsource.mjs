// Subscribes to an SSE URL with the npm "eventsource" package and prints one
// JSON object per line on stdout, for cmd/ssehub/node_e2e_test.go:
//
//   {"kind":"connect","lastEventId":"…","at":ms}  each connection attempt,
//                                                 with the Last-Event-ID it sends
//   {"kind":"open","at":ms}
//   {"kind":"event","type":"…","id":"…","data":"…","at":ms}
//   {"kind":"error","message":"…","code":N,"readyState":N,"at":ms}
//
// Usage: node eventsource.mjs URL [TYPE…]: events of type "message", of
// each TYPE, and the hub's "ssehub.reconnect" are printed. It stops when
// stdin closes.
import { EventSource } from 'eventsource';

const [url, ...types] = process.argv.slice(2);
const print = (o) => process.stdout.write(JSON.stringify({ ...o, at: Date.now() }) + '\n');

const es = new EventSource(url, {
  fetch: (input, init) => {
    print({ kind: 'connect', lastEventId: new Headers(init?.headers).get('last-event-id') ?? '' });
    return fetch(input, init);
  },
});
const onEvent = (e) => print({ kind: 'event', type: e.type, id: e.lastEventId, data: e.data });
for (const t of ['message', 'ssehub.reconnect', ...types]) es.addEventListener(t, onEvent);
es.onopen = () => print({ kind: 'open' });
es.onerror = (e) => print({ kind: 'error', message: e.message ?? '', code: e.code ?? 0, readyState: es.readyState });

process.stdin.resume();
process.stdin.on('end', () => {
  es.close();
  process.exit(0);
});
