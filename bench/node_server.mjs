// The Node baseline: a `socket.io` server with its defaults, doing the gateway's work
// by hand like bench/bare_app.py: a signed login cookie checked on connect, a `session`
// message, `commands` lists with a per-connection seq (one emit per command), acks by
// callback, cumulative `ack` messages recorded.
//   BENCH_PORT=5002 BENCH_SECRET=... BENCH_USER=bench BENCH_PASSWORD=... node bench/node_server.mjs
import crypto from "node:crypto";
import http from "node:http";
import { Server } from "socket.io";

const secret = process.env.BENCH_SECRET;
const users = new Map([[process.env.BENCH_USER || "bench", process.env.BENCH_PASSWORD || ""]]);

const sign = (value) => crypto.createHmac("sha256", secret).update(value).digest("base64url");

function verifiedUser(cookieHeader) {
  for (const part of (cookieHeader || "").split(";")) {
    const [name, value] = part.trim().split("=");
    if (name !== "bench_session" || !value) continue;
    const dot = value.lastIndexOf(".");
    const user = value.slice(0, dot);
    const expected = Buffer.from(sign(user));
    const given = Buffer.from(value.slice(dot + 1));
    if (expected.length === given.length && crypto.timingSafeEqual(expected, given) && users.has(user)) {
      return user;
    }
  }
  return null;
}

const server = http.createServer((req, res) => {
  if (req.method === "GET" && req.url === "/healthz") {
    res.end("ok");
    return;
  }
  if (req.method === "POST" && req.url === "/login") {
    let body = "";
    req.on("data", (chunk) => { body += chunk; if (body.length > 10000) req.destroy(); });
    req.on("end", () => {
      const form = new URLSearchParams(body);
      const name = form.get("name") || "";
      const password = Buffer.from(form.get("password") || "");
      const known = Buffer.from(users.get(name) ?? "\0");
      if (!users.has(name) || known.length !== password.length || !crypto.timingSafeEqual(known, password)) {
        res.writeHead(401).end("no");
        return;
      }
      res.writeHead(302, {
        Location: "/",
        "Set-Cookie": `bench_session=${name}.${sign(name)}; HttpOnly; SameSite=Lax; Path=/`,
      }).end();
    });
    return;
  }
  res.writeHead(404).end();
});

const io = new Server(server);
const seqs = new Map(); // socket -> last seq sent

function sendCommand(socket, name, args) {
  const seq = seqs.get(socket) + 1;
  seqs.set(socket, seq);
  socket.emit("commands", [{ seq, name, args }]);
}

io.use((socket, next) => {
  const user = verifiedUser(socket.request.headers.cookie);
  if (!user) {
    const err = new Error("unauthorized");
    err.data = { code: "unauthorized", message: "Log in first." };
    next(err);
    return;
  }
  socket.data.user = user;
  next();
});

io.on("connection", (socket) => {
  seqs.set(socket, 0);
  socket.data.acked = 0;
  socket.emit("session", {
    session: crypto.randomBytes(12).toString("base64url"),
    token: crypto.randomBytes(24).toString("base64url"),
    app: socket.handshake.auth?.app ?? null,
    user: { id: socket.data.user, name: socket.data.user },
    resumed: false, reason: null, last_seq: 0,
  });
  socket.on("disconnect", () => seqs.delete(socket));
  socket.on("ack", (message) => { socket.data.acked = Math.max(socket.data.acked, Number(message.seq)); });
  socket.on("event", (message, ack) => {
    const { name, data } = message;
    let reply;
    if (name === "echo") {
      const text = String(data.text);
      sendCommand(socket, "output", { kind: "text", content: text });
      reply = { ok: true, result: text };
    } else if (name === "push") {
      const count = Math.min(Number(data.n), 100000);
      const payload = "x".repeat(Math.min(Number(data.size), 65536));
      for (let i = 0; i < count; i++) sendCommand(socket, "data", { i, payload });
      reply = { ok: true, result: count };
    } else if (name === "broadcast") {
      let reached = 0;
      for (const other of seqs.keys()) { sendCommand(other, "tick", { t: data.t }); reached++; }
      reply = { ok: true, result: reached };
    } else {
      reply = { ok: false, error: { code: "unknown_event", message: name } };
    }
    if (typeof ack === "function") ack(reply);
  });
});

server.listen(Number(process.env.BENCH_PORT), "127.0.0.1");
