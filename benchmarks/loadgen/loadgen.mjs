// Keep-alive MCP load generator for benchmarks/throughput.py. Node's own `http`, no dependencies.
//
// Each virtual client owns one `http.Agent({keepAlive: true, maxSockets: 1})`: one TCP
// connection reused for all its calls, the way agentgateway and most MCP clients talk. A client
// sends one `tools/call` at a time and the next as soon as the response body has ended.
//
//   node loadgen.mjs load '{"url": ..., "era": "legacy" | "2026-07-28", "tool": ..., "arguments": {...},
//                           "clients": 8, "warmupS": 1, "durationS": 5}'
//     Prints `{"event": "measure-start"}` and `{"event": "measure-end"}` lines as the measured
//     window opens and closes (the caller samples the server's CPU time then), and finally one
//     `{"event": "result", ...}` line: calls completed in the window, calls/s, latency percentiles.
//
//   node loadgen.mjs sessions '{"url": ...}'
//     Handshake-era sessions held open and idle: each stdin line `open N` opens N more
//     (initialize + notifications/initialized, no GET stream) and answers `{"event": "open",
//     "total": ...}`; end of stdin deletes them all and exits.
//
// Output is JSON lines on stdout only; errors are counted, and the first one is reported.

import http from "node:http";
import readline from "node:readline";

const LEGACY_VERSION = "2025-11-25";
const MODERN_VERSION = "2026-07-28";
const CLIENT_INFO = { name: "tello-mcp-loadgen", version: "1" };
const ACCEPT = "application/json, text/event-stream";

function emit(obj) {
  process.stdout.write(JSON.stringify(obj) + "\n");
}

function request(agent, url, method, headers, body) {
  return new Promise((resolve, reject) => {
    const payload = body === undefined ? undefined : Buffer.from(JSON.stringify(body));
    const all = { ...headers };
    if (payload !== undefined) {
      all["content-type"] = "application/json";
      all["content-length"] = String(payload.length);
    }
    const req = http.request(url, { method, agent, headers: all }, (res) => {
      const chunks = [];
      res.on("data", (chunk) => chunks.push(chunk));
      res.on("end", () =>
        resolve({ status: res.statusCode, headers: res.headers, text: Buffer.concat(chunks).toString("utf8") }),
      );
      res.on("error", reject);
    });
    req.on("error", reject);
    req.end(payload);
  });
}

// The JSON-RPC message of a response: plain JSON, or the first `data:` line of an SSE stream.
function messageOf(text) {
  const trimmed = text.trimStart();
  if (trimmed.startsWith("{")) return JSON.parse(trimmed);
  for (const line of text.split("\n")) {
    if (line.startsWith("data:")) {
      const data = line.slice(5).trim();
      if (data.startsWith("{")) return JSON.parse(data);
    }
  }
  throw new Error(`no JSON-RPC message in ${JSON.stringify(text.slice(0, 200))}`);
}

class McpClient {
  constructor(url, era) {
    this.url = url;
    this.era = era;
    this.agent = new http.Agent({ keepAlive: true, maxSockets: 1 });
    this.headers = { accept: ACCEPT };
    this.nextId = 0;
    this.sessionId = undefined;
  }

  async open() {
    if (this.era !== "legacy") return;
    const init = await this.rpc("initialize", {
      protocolVersion: LEGACY_VERSION,
      capabilities: {},
      clientInfo: CLIENT_INFO,
    });
    const version = init.message.result?.protocolVersion ?? LEGACY_VERSION;
    this.sessionId = init.headers["mcp-session-id"];
    if (!this.sessionId) throw new Error("initialize returned no mcp-session-id");
    this.headers["mcp-session-id"] = this.sessionId;
    this.headers["mcp-protocol-version"] = version;
    const note = await request(this.agent, this.url, "POST", this.headers, {
      jsonrpc: "2.0",
      method: "notifications/initialized",
    });
    if (note.status !== 202 && note.status !== 200) throw new Error(`initialized: HTTP ${note.status}`);
  }

  async rpc(method, params) {
    this.nextId += 1;
    let headers = this.headers;
    let sent = params;
    if (this.era === MODERN_VERSION) {
      // What mcp.Client(mode="2026-07-28") stamps on every request: no session, the version and
      // method as headers, the tool name as Mcp-Name, and the client's identity in `_meta`.
      headers = { ...headers, "mcp-protocol-version": MODERN_VERSION, "mcp-method": method };
      if (method === "tools/call") headers["mcp-name"] = params.name;
      sent = {
        ...params,
        _meta: {
          "io.modelcontextprotocol/protocolVersion": MODERN_VERSION,
          "io.modelcontextprotocol/clientInfo": CLIENT_INFO,
          "io.modelcontextprotocol/clientCapabilities": {},
        },
      };
    }
    const res = await request(this.agent, this.url, "POST", headers, {
      jsonrpc: "2.0",
      id: this.nextId,
      method,
      params: sent,
    });
    if (res.status !== 200) throw new Error(`${method}: HTTP ${res.status} ${res.text.slice(0, 200)}`);
    const message = messageOf(res.text);
    if (message.error) throw new Error(`${method}: ${JSON.stringify(message.error)}`);
    if (message.result?.isError) throw new Error(`${method}: tool error ${JSON.stringify(message.result)}`);
    return { message, headers: res.headers };
  }

  async close() {
    if (this.sessionId !== undefined) {
      try {
        await request(this.agent, this.url, "DELETE", this.headers, undefined);
      } catch {
        // the server may be going away; nothing to clean up then
      }
    }
    this.agent.destroy();
  }
}

function percentile(sorted, p) {
  if (sorted.length === 0) return null;
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1));
  return sorted[index];
}

async function load(config) {
  const { url, era, tool, clients, warmupS, durationS } = config;
  const args = config.arguments ?? {};
  const pool = Array.from({ length: clients }, () => new McpClient(url, era));
  await Promise.all(pool.map((c) => c.open()));

  const latencies = [];
  let errors = 0;
  let firstError = null;
  let measuring = false;
  let stopped = false;
  const nowMs = () => Number(process.hrtime.bigint()) / 1e6;

  async function drive(client) {
    while (!stopped) {
      const start = nowMs();
      const counted = measuring;
      try {
        await client.rpc("tools/call", { name: tool, arguments: args });
        if (counted && measuring) latencies.push(nowMs() - start);
      } catch (err) {
        errors += 1;
        firstError ??= String(err?.message ?? err);
        if (errors > 100) stopped = true;
      }
    }
  }

  const running = pool.map(drive);
  await new Promise((r) => setTimeout(r, warmupS * 1000));
  const cpuStart = process.cpuUsage();
  emit({ event: "measure-start" });
  measuring = true;
  const t0 = nowMs();
  await new Promise((r) => setTimeout(r, durationS * 1000));
  measuring = false;
  const seconds = (nowMs() - t0) / 1000;
  const cpu = process.cpuUsage(cpuStart);
  emit({ event: "measure-end" });
  stopped = true;
  await Promise.all(running);
  await Promise.all(pool.map((c) => c.close()));

  latencies.sort((a, b) => a - b);
  emit({
    event: "result",
    calls: latencies.length,
    seconds,
    calls_per_s: latencies.length / seconds,
    p50_ms: percentile(latencies, 50),
    p90_ms: percentile(latencies, 90),
    p99_ms: percentile(latencies, 99),
    max_ms: latencies.length ? latencies[latencies.length - 1] : null,
    errors,
    first_error: firstError,
    client_cpu_ms: (cpu.user + cpu.system) / 1000,
  });
}

async function sessions(config) {
  const { url } = config;
  const parallel = config.parallel ?? 16;
  const open = [];
  const lines = readline.createInterface({ input: process.stdin });
  for await (const line of lines) {
    const [verb, count] = line.trim().split(/\s+/);
    if (verb !== "open") continue;
    let todo = Number(count);
    let errors = 0;
    let firstError = null;
    const worker = async () => {
      while (todo > 0) {
        todo -= 1;
        const client = new McpClient(url, "legacy");
        try {
          await client.open();
          open.push(client);
        } catch (err) {
          errors += 1;
          firstError ??= String(err?.message ?? err);
          client.agent.destroy();
        }
      }
    };
    await Promise.all(Array.from({ length: parallel }, worker));
    // Idle: no connection kept, only the server-side session.
    for (const client of open) client.agent.destroy();
    emit({ event: "open", total: open.length, errors, first_error: firstError });
  }
  for (let i = 0; i < open.length; i += parallel) {
    await Promise.all(
      open.slice(i, i + parallel).map((c) => {
        c.agent = new http.Agent({ keepAlive: false });
        return c.close();
      }),
    );
  }
}

const [mode, raw] = process.argv.slice(2);
const config = JSON.parse(raw ?? "{}");
const run = mode === "load" ? load : mode === "sessions" ? sessions : null;
if (run === null) {
  process.stderr.write("usage: node loadgen.mjs load|sessions '<json config>'\n");
  process.exit(2);
}
run(config).then(
  () => process.exit(0),
  (err) => {
    emit({ event: "error", message: String(err?.stack ?? err) });
    process.exit(1);
  },
);
