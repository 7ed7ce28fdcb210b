// The benchmark's load generator, on the official socket.io-client (WebSocket only).
// Usage: node bench/load.mjs '{"kind": "gateway"|"bare"|"node", "url": ..., "user": ...,
//                              "password": ..., "scenario": ..., "params": {...}}'
// Scenarios: connect, echo, push, broadcast (see bench/README.md). It speaks the
// gateway's protocol v1 to all three servers: `event` with an ack callback, `commands`
// lists acknowledged with cumulative `ack` messages, as static/gateway.js does.
//
// Stdout carries JSON lines: {"mark": NAME} when it reaches a point where the driver
// measures the server (RSS, CPU); it then waits for one line on stdin before going on.
// The last line is {"result": {...}} (or {"error": ...}). Every loop is bounded in count
// and time; a global deadline ends the process.
import { createInterface } from "node:readline";
import { performance } from "node:perf_hooks";
import { io } from "socket.io-client";

const config = JSON.parse(process.argv[2]);
const { kind, url, scenario } = config;
const params = config.params || {};
const stdin = createInterface({ input: process.stdin });
const lines = stdin[Symbol.asyncIterator]();
const opened = [];

function out(object) {
  process.stdout.write(JSON.stringify(object) + "\n");
}

function finish(code, payload) {
  out(payload);
  for (const c of opened) c.socket.close();
  // Let stdout drain before exiting.
  process.stdout.write("", () => process.exit(code));
}

const deadline = setTimeout(() => finish(2, { error: `deadline of ${params.deadline_ms} ms passed` }),
  params.deadline_ms || 120000);
deadline.unref();

async function mark(name) {
  out({ mark: name });
  const line = await lines.next();
  if (line.done) throw new Error("the driver closed stdin");
}

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

function percentile(values, p) {
  if (!values.length) return null;
  const sorted = Float64Array.from(values).sort();
  return sorted[Math.min(sorted.length - 1, Math.floor((p / 100) * sorted.length))];
}

// -- login --------------------------------------------------------------------

async function login() {
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const form = { name: config.user, password: config.password };
  if (kind === "gateway") {
    // The real login form: its CSRF token and cookie, then the post.
    const page = await fetch(`${url}/login`);
    keep(page);
    form.csrf_token = /name="csrf_token"[^>]*value="([^"]+)"/.exec(await page.text())[1];
  }
  const res = await fetch(`${url}/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: cookie() },
    body: new URLSearchParams(form),
  });
  if (res.status !== 302) throw new Error(`login failed: ${res.status}`);
  keep(res);
  return cookie();
}

// -- one protocol client --------------------------------------------------------

function open(cookie, timeoutMs) {
  return new Promise((resolve, reject) => {
    const socket = io(url, {
      transports: ["websocket"],
      reconnection: false,
      forceNew: true,
      timeout: timeoutMs,
      extraHeaders: { Cookie: cookie },
      auth: { app: "bench", resume: null },
    });
    const client = { socket, nextId: 1, lastSeq: 0, onCommand: null, closed: null, errors: 0 };
    const timer = setTimeout(() => fail(new Error("timeout")), timeoutMs);
    function fail(err) {
      clearTimeout(timer);
      socket.close();
      reject(err);
    }
    socket.on("connect_error", (err) => fail(err));
    socket.on("session", () => {
      clearTimeout(timer);
      opened.push(client);
      resolve(client);
    });
    socket.on("close", (data) => { client.closed = data; });
    socket.on("commands", (batch) => {
      for (const command of batch) {
        if (command.seq !== client.lastSeq + 1) client.errors++;  // a gap or a duplicate
        client.lastSeq = command.seq;
        if (client.onCommand) client.onCommand(command);
      }
      socket.emit("ack", { seq: client.lastSeq });
    });
  });
}

function call(client, name, data, timeoutMs = 30000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => reject(new Error(`no ack for ${name}`)), timeoutMs);
    client.socket.emit("event", { id: client.nextId++, name, data }, (ack) => {
      clearTimeout(timer);
      if (ack && ack.ok) resolve(ack.result);
      else reject(new Error(`${name} failed: ${JSON.stringify(ack)}`));
    });
  });
}

// Open `n` clients, at most `window` handshakes at a time; stop early after
// `maxFailures` failures or past `rampMs` (what is not attempted counts as failed).
async function ramp(cookie, n, { window = 200, timeoutMs = 5000, maxFailures = 100, rampMs = 60000 } = {}) {
  const clients = [];
  const handshakes = [];
  let started = 0;
  let failed = 0;
  const reasons = {};
  const t0 = performance.now();
  async function worker() {
    while (started < n && failed < maxFailures && performance.now() - t0 < rampMs) {
      started++;
      const t = performance.now();
      try {
        clients.push(await open(cookie, timeoutMs));
        handshakes.push(performance.now() - t);
      } catch (err) {
        failed++;
        reasons[err.message] = (reasons[err.message] || 0) + 1;
      }
    }
  }
  await Promise.all(Array.from({ length: Math.min(window, n) }, worker));
  const seconds = (performance.now() - t0) / 1000;
  return {
    clients,
    stats: {
      attempted: started, connected: clients.length, failed: n - clients.length,
      failure_reasons: reasons, ramp_s: seconds, connect_rate: clients.length / seconds,
      handshake_p50_ms: percentile(handshakes, 50), handshake_p99_ms: percentile(handshakes, 99),
    },
  };
}

// -- scenarios -------------------------------------------------------------------

async function connectScenario(cookie) {
  // One session first, to warm the server's code paths (outside the RSS and CPU
  // figures); the ramp opens the other n - 1, so n sessions are open at the end.
  const n = params.n;
  await open(cookie, 10000);
  await sleep(300);
  await mark("before");
  const { clients, stats } = await ramp(cookie, n - 1, params);
  await sleep(params.settle_ms ?? 1000);
  await mark("connected");
  return {
    n, ...stats, ramped: stats.connected, connected: stats.connected + 1,
    failed: n - 1 - stats.connected, closed: clients.filter((c) => c.closed).length,
  };
}

async function echoScenario(cookie) {
  const clients = [];
  for (let i = 0; i < params.clients; i++) clients.push(await open(cookie, 10000));
  const text = "x".repeat(params.text_bytes ?? 16);
  for (let i = 0; i < (params.warmup ?? 50); i++) await Promise.all(clients.map((c) => call(c, "echo", { text })));
  await mark("ready");
  const latencies = [];
  let errors = 0;
  const t0 = performance.now();
  const stopAt = t0 + params.duration_ms;
  async function loop(client) {
    for (let i = 0; i < params.max_ops && performance.now() < stopAt; i++) {
      const t = performance.now();
      try {
        const result = await call(client, "echo", { text });
        if (result !== text) errors++;
        latencies.push(performance.now() - t);
      } catch {
        errors++;
        return;
      }
    }
  }
  await Promise.all(clients.map(loop));
  const seconds = (performance.now() - t0) / 1000;
  await mark("done");
  return {
    clients: clients.length, ops: latencies.length, seconds, ops_per_s: latencies.length / seconds,
    p50_ms: percentile(latencies, 50), p99_ms: percentile(latencies, 99), errors,
    seq_errors: clients.reduce((sum, c) => sum + c.errors, 0),
  };
}

async function pushScenario(cookie) {
  const { n, size } = params;
  const clients = [];
  for (let i = 0; i < params.clients; i++) clients.push(await open(cookie, 10000));
  // Warm-up: a small push each, fully received and acknowledged.
  await Promise.all(clients.map((c) => pushOnce(c, 50, size, 30000)));
  await sleep(200);
  await mark("ready");
  const t0 = performance.now();
  const runs = await Promise.all(clients.map((c) => pushOnce(c, n, size, params.timeout_ms ?? 60000)
    .catch((err) => ({ error: err.message, received: 0 }))));
  const seconds = (performance.now() - t0) / 1000;
  await mark("done");
  const received = runs.reduce((sum, r) => sum + r.received, 0);
  return {
    clients: clients.length, n, size, commands: received, seconds, commands_per_s: received / seconds,
    first_command_ms_max: Math.max(...runs.map((r) => (r.first ?? Infinity) - t0)),
    first_command_ms_p50: percentile(runs.map((r) => (r.first ?? Infinity) - t0), 50),
    errors: runs.filter((r) => r.error).length + runs.reduce((s, r) => s + (r.order_errors || 0), 0),
    seq_errors: clients.reduce((sum, c) => sum + c.errors, 0),
    closed: clients.filter((c) => c.closed).map((c) => c.closed.reason),
  };
}

function pushOnce(client, n, size, timeoutMs) {
  return new Promise((resolve, reject) => {
    const run = { received: 0, first: null, order_errors: 0, acked: false };
    const timer = setTimeout(() => {
      client.onCommand = null;
      reject(new Error(`push: ${run.received}/${n} commands after ${timeoutMs} ms`));
    }, timeoutMs);
    const check = () => {
      if (run.received === n && run.acked) {
        clearTimeout(timer);
        client.onCommand = null;
        run.done = performance.now();
        resolve(run);
      }
    };
    client.onCommand = (command) => {
      if (command.name !== "data") return;
      if (run.first === null) run.first = performance.now();
      if (command.args.i !== run.received || command.args.payload.length !== size) run.order_errors++;
      run.received++;
      check();
    };
    call(client, "push", { n, size }, timeoutMs).then((result) => {
      if (result !== n) run.order_errors++;
      run.acked = true;
      check();
    }, (err) => { clearTimeout(timer); reject(err); });
  });
}

async function broadcastScenario(cookie) {
  const control = await open(cookie, 10000);
  const { clients, stats } = await ramp(cookie, params.n, params);
  const everyone = [control, ...clients];
  await sleep(params.settle_ms ?? 500);
  await mark("ready");
  const rounds = [];
  for (let round = 1; round <= (params.rounds ?? 3); round++) {
    const receipts = [];
    const t0 = performance.now();
    const all = new Promise((resolve) => {
      let left = everyone.length;
      for (const c of everyone) {
        c.onCommand = (command) => {
          if (command.name !== "tick" || command.args.t !== round) return;
          c.onCommand = null;
          receipts.push(performance.now() - t0);
          if (--left === 0) resolve();
        };
      }
    });
    const reached = await call(control, "broadcast", { t: round }, params.timeout_ms ?? 30000);
    await Promise.race([all, sleep(params.timeout_ms ?? 30000)]);
    for (const c of everyone) c.onCommand = null;
    rounds.push({
      reached, received: receipts.length, missing: everyone.length - receipts.length,
      last_ms: percentile(receipts, 100), p50_ms: percentile(receipts, 50),
    });
    await sleep(200);
  }
  await mark("done");
  const lasts = rounds.map((r) => r.last_ms ?? Infinity);
  return {
    n: params.n, sessions: everyone.length, ...stats, rounds,
    time_to_last_ms: percentile(lasts, 50),
    missing: Math.max(...rounds.map((r) => r.missing)),
    seq_errors: everyone.reduce((sum, c) => sum + c.errors, 0),
  };
}

const SCENARIOS = { connect: connectScenario, echo: echoScenario, push: pushScenario, broadcast: broadcastScenario };

async function main() {
  if (!SCENARIOS[scenario]) throw new Error(`unknown scenario ${scenario}`);
  const cookie = await login();
  const result = await SCENARIOS[scenario](cookie);
  finish(0, { result });
}

main().catch((err) => finish(1, { error: String(err && err.stack || err) }));
