// The real static/gateway.js in Node against a real server, driven by
// tests/integration/test_gateway_js.py. Usage: node gateway_js.mjs URL COOKIE SCENARIO
// Prints one JSON line: what the scenario saw. Waits are on events, each with a deadline.
import { io } from "socket.io-client";
import { Client, memoryStorage } from "../../../static/gateway.js";

const [url, cookie, scenario] = process.argv.slice(2);
globalThis.io = io; // what the page gets from vendor/socket.io.min.js; read by connect()

const deadline = setTimeout(() => finish({ error: "timed out" }, 2), 30000);
const clients = [];

function finish(out, code = 0) {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify(out) + "\n");
  for (const c of clients) c.close();
  process.exit(code);
}

function client(options) {
  const c = new Client(Object.assign({
    app: "echo", url, storage: memoryStorage(), transports: ["websocket"],
    reconnectionDelay: 20, reconnectionDelayMax: 200, randomizationFactor: 0.5,
    ioOptions: { extraHeaders: { Cookie: cookie } },
  }, options));
  c.seen = []; // every [status, detail], in order
  c.onStatus((status, detail) => c.seen.push([status, Object.assign({}, detail)]));
  clients.push(c);
  return c;
}

// Resolves with the first status detail (from now on) that `match(status, detail)` accepts.
function nextStatus(c, match, what, ms = 10000) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { stop(); reject(new Error(`no ${what} within ${ms} ms`)); }, ms);
    const stop = c.onStatus((status, detail) => {
      if (!match(status, detail)) return;
      clearTimeout(timer);
      stop();
      resolve(Object.assign({}, detail));
    });
  });
}

const welcomed = (c) => nextStatus(c, (s) => s === "connected" || s === "resumed" || s === "expired", "session");

// A copy of a storage's entries in a new one: what a reload, or a duplicated tab, starts from.
function copyOf(storage, edit = (k, v) => v) {
  const copy = memoryStorage();
  for (let i = 0; i < storage.length; i++) {
    const key = storage.key(i);
    copy.setItem(key, edit(key, storage.getItem(key)));
  }
  return copy;
}

const settle = (promise) => promise.then((result) => ({ ok: true, result }),
                                         (err) => ({ ok: false, code: err.code }));

const scenarios = {
  // 20 events at once to a session that remembers 4 results, with a cut after the 6th
  // answer: the wire never carries an event whose result the server may have forgotten.
  async bounded() {
    const c = client();
    const session = welcomed(c);
    c.connect();
    // The raw wire: every `event` emitted and every ack, whatever the client does with them.
    const socket = c.socket;
    const emit = socket.emit.bind(socket);
    const answered = new Set(), sent = new Set();
    let maxSpan = 0, maxOutstanding = 0, maxInFlight = 0, emits = 0;
    const outstanding = new Set(); // on this connection
    socket.on("disconnect", () => outstanding.clear());
    socket.emit = (name, ...args) => {
      if (name !== "event") return emit(name, ...args);
      const [event, ack] = args;
      emits++;
      sent.add(event.id);
      outstanding.add(event.id);
      const unanswered = [...sent].filter((id) => !answered.has(id));
      // This event and every unanswered one before it: the server must remember them all.
      maxSpan = Math.max(maxSpan, event.id - Math.min(...unanswered) + 1);
      maxOutstanding = Math.max(maxOutstanding, outstanding.size);
      return emit(name, event, (reply) => {
        answered.add(event.id);
        outstanding.delete(event.id);
        ack(reply);
      });
    };
    await session;
    const eventMemory = c.eventMemory;
    let acked = 0, cut = false;
    const results = await Promise.all(Array.from({ length: 20 }, (_, i) => settle(
      c.send("echo", { text: `n${i + 1}` }).finally(() => {
        maxInFlight = Math.max(maxInFlight, c.inFlightCount);
        if (++acked === 6 && !cut) {
          cut = true;
          c.socket.io.engine.close(); // the transport drops with events in flight
        }
      }))));
    finish({ eventMemory, results, maxSpan, maxOutstanding, maxInFlight, emits, cut,
             statuses: c.seen.map(([s]) => s), pending: c.pendingCount });
  },

  // A reload whose session cannot be resumed (here: a wrong token) with two events that
  // were never answered: the fresh session reports them as lost.
  async lost() {
    const before = client();
    const first = welcomed(before);
    before.connect();
    await first;
    before.close(); // offline: what is sent now waits in storage
    const orphans = [before.send("echo", { text: "x1" }), before.send("echo", { text: "x2" })];
    orphans.forEach((p) => p.catch(() => {})); // the page that sent them is gone
    const storage = copyOf(before.storage, (key, value) => {
      if (key !== before.storageKey) return value;
      const state = JSON.parse(value);
      state.token = [...state.token].reverse().join(""); // well formed, but not its token
      return JSON.stringify(state);
    });
    const after = client({ storage });
    const expired = nextStatus(after, (s) => s === "expired", "expired");
    after.connect();
    const detail = await expired;
    finish({ detail, pending: after.pendingCount, sessionBefore: before.sessionId,
             sessionAfter: after.sessionId });
  },

  // A reload that resumes, with an event sent before it that the server refuses: nobody
  // waits for it in the new page, and it is reported all the same.
  async failed() {
    const before = client();
    const first = welcomed(before);
    before.connect();
    await first;
    before.close();
    before.send("no.such.event", {}).catch(() => {});
    const after = client({ storage: copyOf(before.storage) });
    const failed = nextStatus(after, (_, d) => Boolean(d.failed), "failed");
    after.connect();
    const detail = await failed;
    finish({ detail, statuses: after.seen.map(([s]) => s), pending: after.pendingCount });
  },

  // Storage fills up mid-session: the client keeps its state in memory, removes the stale
  // stored copy, warns once, and goes on.
  async quota() {
    const data = new Map();
    let full = false;
    const stub = {
      get length() { return data.size; },
      key: (i) => [...data.keys()][i] ?? null,
      getItem: (k) => data.get(k) ?? null,
      setItem: (k, v) => {
        if (full) throw new DOMException("The quota has been exceeded.", "QuotaExceededError");
        data.set(k, String(v));
      },
      removeItem: (k) => { data.delete(k); },
    };
    const warnings = [];
    const warn = console.warn;
    console.warn = (...args) => { warnings.push(String(args[0])); };
    const c = client({ storage: stub });
    const session = welcomed(c);
    c.connect();
    await session;
    const storedBefore = [...data.keys()];
    stub.setItem(c.storageKey + ":view", "{}"); // a journal beside it, as the renderer keeps
    full = true;
    const results = [];
    for (const text of ["q1", "q2", "q3"]) results.push(await settle(c.send("echo", { text })));
    console.warn = warn;
    const inMemory = JSON.parse(c.storage.getItem(c.storageKey));
    finish({
      results, warnings, storedBefore, storedAfter: [...data.keys()],
      warned: c.seen.filter(([, d]) => d.warning).map(([s, d]) => ({ status: s, storage: d.storage, again: d.again })),
      storageDetail: c.statusDetail.storage,
      memoryLastSeq: inMemory.lastSeq, lastSeq: c.lastSeq, sameStorage: c.storage === stub,
    });
  },

  // Two Clients of one app on one storage (one page): keys of their own, sessions of their own.
  async two() {
    const storage = memoryStorage();
    const a = client({ storage }), b = client({ storage });
    const ready = [welcomed(a), welcomed(b)];
    a.connect();
    b.connect();
    await Promise.all(ready);
    const results = [await a.send("echo", { text: "from a" }), await b.send("echo", { text: "from b" })];
    const stored = {};
    for (let i = 0; i < storage.length; i++) {
      const key = storage.key(i);
      if (!key.includes(":view")) stored[key] = JSON.parse(storage.getItem(key)).session;
    }
    finish({ keys: [a.storageKey, b.storageKey], sessions: [a.sessionId, b.sessionId], stored, results });
  },

  // A copy of a live client's storage (a duplicated tab), in the same process: the copy asks
  // over BroadcastChannel, the live one answers, and the copy opens a session of its own.
  async duplicate() {
    const a = client();
    const first = welcomed(a);
    a.connect();
    await first;
    const a1 = await a.send("echo", { text: "a1" });
    const b = client({ storage: copyOf(a.storage) });
    const second = welcomed(b);
    b.connect();
    const detail = await second;
    const results = [await a.send("echo", { text: "a2" }), await b.send("echo", { text: "b1" })];
    finish({ a: a.sessionId, b: b.sessionId, detail, results: [a1, ...results],
             aStatuses: a.seen.map(([s]) => s) });
  },

  // The same copy with the check turned off (as in a browser without BroadcastChannel): it
  // resumes the live session (which kicks the original) and numbers its events from the
  // copy, so the server refuses one as event_id_reused; the copy starts a session of its own.
  async reused() {
    const a = client();
    const welcome = new Promise((resolve) => a.on("output", resolve)); // seq 1 applied
    a.connect();
    await welcome;
    const b = client({ storage: copyOf(a.storage), tabCheckMs: 0 }); // the copy: next id 1
    const refused = await settle(a.send("no.such.event", {})); // id 1, refused but recorded
    const kicked = nextStatus(a, (s) => s === "closed", "closed");
    const resumed = nextStatus(b, (s) => s === "resumed", "resumed");
    b.connect();
    await resumed;
    await kicked;
    const sessionBefore = b.sessionId;
    const expired = nextStatus(b, (s) => s === "expired", "expired");
    const reused = await settle(b.send("echo", { text: "b1" })); // id 1 again: another event
    const detail = await expired;
    const again = await settle(b.send("echo", { text: "b2" }));
    finish({ refused, reused, detail, again, sessionBefore, sessionAfter: b.sessionId,
             aStatus: a.status, aReason: a.statusDetail.reason });
  },
};

scenarios[scenario]().catch((err) => finish({ error: String(err && err.stack || err) }, 1));
