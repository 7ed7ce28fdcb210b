// A protocol client on the official socket.io-client, driven by tests/integration/test_node_client.py.
// Usage: node client.mjs BASE_URL SCENARIO TRANSPORT [USER PASSWORD]
// Prints one JSON object on stdout: every message received, in order, and the acks.
import { io } from "socket.io-client";

const [baseUrl, scenario, transport, user, password] = process.argv.slice(2);
const deadline = setTimeout(() => finish(2, "timed out"), 15000);
const received = [];
const acks = [];
let socket;

function finish(code, error) {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify({ received, acks, error: error || null }) + "\n");
  if (socket) socket.close();
  process.exit(code);
}

async function login() {
  // The real login form: fetch its CSRF token and cookie, then post it.
  const page = await fetch(`${baseUrl}/login`);
  const jar = new Map();
  const keep = (res) => {
    for (const c of res.headers.getSetCookie()) {
      const [pair] = c.split(";");
      const i = pair.indexOf("=");
      jar.set(pair.slice(0, i), pair.slice(i + 1));
    }
  };
  keep(page);
  const token = /name="csrf_token"[^>]*value="([^"]+)"/.exec(await page.text())[1];
  const cookie = () => [...jar].map(([k, v]) => `${k}=${v}`).join("; ");
  const res = await fetch(`${baseUrl}/login`, {
    method: "POST",
    redirect: "manual",
    headers: { "Content-Type": "application/x-www-form-urlencoded", Cookie: cookie() },
    body: new URLSearchParams({ csrf_token: token, name: user, password }),
  });
  if (res.status !== 302) throw new Error(`login failed: ${res.status}`);
  keep(res);
  return cookie();
}

let lastSeq = 0;
function maybeDone() {
  // echo: 20 acks and the 21 commands (welcome text + 20 echoes), in whatever interleaving
  if (scenario === "echo" && acks.length === 20 && lastSeq === 21) finish(0);
}

function send(id, name, data) {
  socket.emit("event", { id, name, data }, (ack) => {
    acks.push({ id, ack });
    maybeDone();
  });
}

async function main() {
  const cookie = scenario === "anonymous" ? null : await login();
  const app = scenario === "anonymous" ? "hello" : scenario;
  socket = io(baseUrl, {
    transports: [transport],
    reconnection: false,
    extraHeaders: cookie ? { Cookie: cookie } : {},
    auth: { app, resume: null },
  });
  socket.on("connect_error", (err) => {
    received.push(["connect_error", { message: err.message, data: err.data }]);
    finish(0);
  });
  socket.on("session", (data) => received.push(["session", data]));
  socket.on("close", (data) => received.push(["close", data]));
  socket.on("disconnect", () => finish(0));
  let nextId = 1;
  socket.on("commands", (batch) => {
    received.push(["commands", batch]);
    for (const command of batch) {
      if (command.name === "input") {
        send(nextId++, "input.reply", { request: command.args.request, value: "Node" });
      }
      if (scenario === "echo" && command.seq === 1) {
        for (let i = 1; i <= 20; i++) send(nextId++, "echo", { text: `n${i}` });
      }
    }
    lastSeq = batch[batch.length - 1].seq;
    socket.emit("ack", { seq: lastSeq });
    maybeDone();
  });
}

main().catch((err) => finish(1, String(err)));
