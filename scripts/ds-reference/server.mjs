// Starts the Durable Streams reference server, @durable-streams/server (the
// protocol's own Node implementation), for scripts/bench-floors.sh DSTOKENS.
//
//   node scripts/ds-reference/server.mjs [--port 4437] [--host 127.0.0.1] [--data DIR] [--max-file-handles 4096]
//
// Streams are served at every path (http://HOST:PORT/v1/stream/NAME works).
// With --data they are durable: FileBackedStreamStore, one log file per
// stream with an fdatasync on every append, and metadata in LMDB; without
// it they are in memory (StreamStore). Prints "listening on URL" once it
// accepts connections; stops on SIGINT or SIGTERM.
//
// --max-file-handles: the file store keeps this many stream files open. Its
// default, 100, is wrong for more active streams than that: a handle
// evicted between an append's write and its fdatasync fails the append
// with 404 "Stream not found" although its bytes were written (and are
// read). TestServerOptions has no way to set it, so the server is built
// with the in-memory store and given a file store before it starts.
import { parseArgs } from "node:util"
import { DurableStreamTestServer, FileBackedStreamStore } from "@durable-streams/server"

const { values: opt } = parseArgs({
  options: {
    port: { type: "string", default: "4437" },
    host: { type: "string", default: "127.0.0.1" },
    data: { type: "string" },
    "max-file-handles": { type: "string", default: "4096" },
  },
})

const server = new DurableStreamTestServer({ port: Number(opt.port), host: opt.host })
if (opt.data) {
  server.store = new FileBackedStreamStore({
    dataDir: opt.data,
    maxFileHandles: Number(opt["max-file-handles"]),
  })
}
const url = await server.start()
console.log(`listening on ${url} (${opt.data ? `file-backed store in ${opt.data}` : "in-memory store"})`)

for (const sig of ["SIGINT", "SIGTERM"]) {
  process.once(sig, async () => {
    await server.stop()
    process.exit(0)
  })
}
