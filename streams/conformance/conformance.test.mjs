// The Durable Streams server conformance suite, run against the server at
// DS_BASE_URL (streams/conformance_test.go starts ssehub and sets it).
import { describe } from "vitest"
import { runConformanceTests } from "@durable-streams/server-conformance-tests"

const baseUrl = process.env.DS_BASE_URL
if (!baseUrl) throw new Error("DS_BASE_URL is not set: start a server and point DS_BASE_URL at it")

describe("ssehub", () => {
  runConformanceTests({ baseUrl, longPollTimeoutMs: Number(process.env.DS_LONG_POLL_MS || 20000) })
})
