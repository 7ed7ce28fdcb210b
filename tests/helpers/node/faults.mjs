// Fault test client: the real static/gateway.js on the official socket.io-client, in Node.
// Usage: node faults.mjs URL COOKIE EVENTS
// Streams the `stream` app's commands, sends EVENTS `tally` events, survives every cut the
// test's proxy makes, and prints one JSON line of what it saw.
import { io } from "socket.io-client";
import { Client, memoryStorage } from "../../../static/gateway.js";

const [url, cookie, eventsArg, secondsArg] = process.argv.slice(2);
const EVENTS = Number(eventsArg);
const PUMP_MS = (Number(secondsArg) * 1000) / (EVENTS / 20); // spreads the events over the stream
globalThis.io = io; // what the page gets from vendor/socket.io.min.js; read by connect()

const deadline = setTimeout(() => finish(2, "timed out"), 190000);
const client = new Client({
  app: "stream", url, storage: memoryStorage(), transports: ["websocket"],
  reconnectionDelay: 20, reconnectionDelayMax: 500, randomizationFactor: 0.5,
  ioOptions: { extraHeaders: { Cookie: cookie } },
});

let lastTick = 0, ticksInOrder = true, applied = 0, report = null;
let maxSeen = 0, duplicates = 0, gaps = 0;
let acks = 0;
const badAcks = [];
const freshSessions = [];
const resumeSeconds = [];
let droppedAt = null;

client.on("tick", (args) => {
  applied++;
  if (args.n !== lastTick + 1) ticksInOrder = false;
  lastTick = args.n;
});
client.on("report", (args) => {
  applied++;
  report = args;
  process.stderr.write("report\n"); // tells the test the stream has ended
  maybeDone();
});
client.onStatus((status, detail) => {
  if (status === "reconnecting" && droppedAt === null) droppedAt = Date.now();
  if (status === "resumed" && droppedAt !== null) {
    resumeSeconds.push((Date.now() - droppedAt) / 1000);
    droppedAt = null;
  }
  if (status === "expired") freshSessions.push(detail);
});

// The test closes our stdin once its proxy has made all its cuts.
let released = false;
process.stdin.on("end", () => { released = true; maybeDone(); });
process.stdin.resume();

function maybeDone() {
  if (report && acks === EVENTS && released) finish(0);
}

function finish(code, error) {
  clearTimeout(deadline);
  process.stdout.write(JSON.stringify({
    applied, duplicates, gaps, ticksInOrder, report, acks, badAcks, freshSessions,
    resumeSeconds, error: error || null,
  }) + "\n");
  client.close();
  process.exit(code);
}

client.connect();
client.socket.on("commands", (batch) => {
  // Raw view of what arrived: anything at or below the highest seq seen is a resend
  // that the client must drop; a jump ahead of it is a gap.
  for (const command of batch) {
    if (command.seq <= maxSeen) duplicates++;
    else { if (command.seq !== maxSeen + 1 && maxSeen !== 0) gaps++; maxSeen = command.seq; }
  }
});
client.socket.on("session", (data) => { if (!data.resumed) maxSeen = data.last_seq; });

let n = 0;
const pump = setInterval(() => {
  for (let i = 0; i < 20 && n < EVENTS; i++) {
    const k = ++n;
    client.send("tally", { n: k }).then(
      (result) => { acks++; if (result !== k) badAcks.push({ k, result }); maybeDone(); },
      (err) => { acks++; badAcks.push({ k, error: String(err.code || err) }); maybeDone(); },
    );
  }
  if (n >= EVENTS) clearInterval(pump);
}, PUMP_MS);
