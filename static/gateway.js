// @ts-check
/*
 * gateway.js - browser client for the session gateway (Protocol v1, see DESIGN.md).
 * A native ES module; needs the official socket.io-client loaded first as a classic
 * script (its UMD build defines the global `io`, read when connect() is called).
 *
 *   import { Client } from './gateway.js';
 *   const client = new Client({app: 'hello'});
 *   client.on('output', (args, command) => { ... });
 *   client.onStatus((status, detail) => { ... });
 *   client.connect();
 *   client.send('echo', {text: 'hi'}).then((result) => ...);
 *
 * What it guarantees on its side of the contract:
 * - commands are applied once each, in seq order, across reconnects and reloads
 *   (last applied seq lives in storage and is sent back when resuming);
 * - events are kept (in storage too) until the server acks them and are resent
 *   with the same id after a resume, so the server can answer duplicates; no more of them
 *   await an ack at once than the session remembers results of (`event_memory`);
 * - a duplicated tab (which copies sessionStorage) asks the other tabs over a
 *   BroadcastChannel whether one of them holds the stored session; if one does, the copy
 *   drops the copied state and opens a session of its own (never a shared id space);
 * - nothing sent vanishes silently: events a session ended without answering are
 *   reported in the status detail (`lost`), and so are errors answering events sent
 *   before a reload (`failed`);
 * - when storage fails (quota), the state is kept in memory only and the stored copy is
 *   removed, so a reload starts afresh instead of resuming from a stale position.
 * Two Clients of one app in one page keep their state under keys of their own
 * ("gateway:APP", then "gateway:APP#2", ... in construction order).
 */

// ---- Protocol v1 messages (DESIGN.md, "Protocol v1") ------------------------------------

/**
 * `auth` of the Socket.IO connect: which app, and the session to resume if any.
 * @typedef {object} ConnectAuth
 * @property {string} app
 * @property {ResumeRequest | null} resume
 */

/**
 * @typedef {object} ResumeRequest
 * @property {string} session
 * @property {string} token
 * @property {number} last_seq  every command with seq <= last_seq has been applied
 */

/**
 * Codes of a refused connect (CONNECT_ERROR `data.code`, also its `message`).
 * @typedef {'unauthorized' | 'unknown_app' | 'too_many_sessions' | 'bad_request'} ConnectErrorCode
 */

/**
 * `data` of a CONNECT_ERROR the server sends on purpose.
 * @typedef {object} ConnectErrorData
 * @property {ConnectErrorCode} code
 * @property {string} message
 */

/**
 * @typedef {object} User
 * @property {number} id
 * @property {string} name
 */

/**
 * Server to client `session`: the first message on every connection.
 * @typedef {object} SessionMessage
 * @property {string} session
 * @property {string} token      secret of the session, sent back when resuming
 * @property {string} app
 * @property {User} user
 * @property {boolean} resumed
 * @property {'expired' | 'unknown' | 'replay_overflow' | 'forbidden' | null} reason
 *   why a requested resume did not happen
 * @property {number} last_seq
 * @property {number} [event_memory]  the session remembers the results of its last
 *   event_memory events (a resend of an older one is answered `result_forgotten`): never
 *   more than this many may await an ack at once
 */

/**
 * One command of a `commands` message. `args` is an object chosen by the app; the
 * built-in names are rendered by renderer.js.
 * @typedef {object} Command
 * @property {number} seq       1, 2, 3, ... per session
 * @property {string} name
 * @property {CommandArgs} [args]
 */

/** @typedef {Record<string, any>} CommandArgs */

/**
 * Server to client `commands`: always a list, in seq order.
 * @typedef {Command[]} CommandsMessage
 */

/**
 * @typedef {'closed' | 'expired' | 'logged_out' | 'kicked' | 'server_shutdown' | 'slow_consumer'} CloseReason
 */

/**
 * Server to client `close`: the session is over; the server disconnects next.
 * @typedef {object} CloseMessage
 * @property {CloseReason} reason
 * @property {string} message
 */

/**
 * Server to client `reconnect` (protocol v1.1): the session is safe in the session store
 * and the server disconnects next; resuming after the drop picks it up again. This client
 * has no handler of its own for it: it resumes as after any cut.
 * @typedef {object} ReconnectMessage
 * @property {'server_shutdown'} reason
 * @property {string} message
 */

/**
 * Client to server `event`, answered through the Socket.IO ack callback.
 * @typedef {object} EventMessage
 * @property {number} id      grows per session; a resend keeps its id
 * @property {string} name    matches EVENT_NAME
 * @property {unknown} data
 */

/**
 * Codes of an error ack. `result_forgotten`: a resent event ran, but too long ago for its
 * result to be kept. `event_id_reused`: the id was this session's for another event (two
 * tabs numbering from one copied state). `bus_unavailable`: the handler needed the
 * cluster's bus, which is down.
 * @typedef {'bad_request' | 'unknown_event' | 'rate_limited' | 'too_large' | 'internal_error' | 'session_closed' | 'result_forgotten' | 'event_id_reused' | 'bus_unavailable'} EventErrorCode
 */

/**
 * The answer to an `event` (its ack callback's argument).
 * @typedef {{ok: true, result: unknown} | {ok: false, error: {code: EventErrorCode, message: string}}} EventReply
 */

/**
 * Client to server `ack`: cumulative, every command with seq <= `seq` has been applied.
 * @typedef {object} AckMessage
 * @property {number} seq
 */

/**
 * Listen events of the socket (server to client).
 * @typedef {object} ServerToClientEvents
 * @property {(msg: SessionMessage) => void} session
 * @property {(list: CommandsMessage) => void} commands
 * @property {(msg: CloseMessage) => void} close
 * @property {(msg: ReconnectMessage) => void} reconnect
 */

/**
 * Emit events of the socket (client to server).
 * @typedef {object} ClientToServerEvents
 * @property {(event: EventMessage, ack: (reply: EventReply) => void) => void} event
 * @property {(msg: AckMessage) => void} ack
 */

/** @typedef {import('socket.io-client').Socket<ServerToClientEvents, ClientToServerEvents>} GatewaySocket */
/** @typedef {typeof import('socket.io-client').io} IoFactory */

// ---- the client's own types -----------------------------------------------------------

/**
 * What the client reports through onStatus().
 * @typedef {'idle' | 'connecting' | 'connected' | 'reconnecting' | 'resumed' | 'expired' | 'closed' | 'unauthorized' | 'error'} Status
 */

/**
 * An event this tab sent that its session ended without answering (it may or may not
 * have taken effect), or that was answered with an error after the page that sent it
 * was reloaded (then with the error's code).
 * @typedef {object} EventReport
 * @property {number} id
 * @property {string} name
 * @property {string} [code]
 */

/**
 * The detail passed with a status (which fields are set depends on the status). A status
 * can be told again with `again: true` when there is news about it (`failed`, `warning`).
 * @typedef {object} StatusDetail
 * @property {Status} [status]
 * @property {string} [session]
 * @property {User | null} [user]
 * @property {string | null} [reason]
 * @property {string} [code]
 * @property {string} [message]
 * @property {number} [attempt]
 * @property {EventReport[]} [lost]      with `expired` and `closed`: events the ended session never answered
 * @property {EventReport[]} [failed]    events from before a reload answered with an error
 * @property {boolean} [duplicate]       with `connected`: this tab was a copy of another open
 *   tab; it dropped the copied state and opened a session of its own
 * @property {'memory'} [storage]        storage failed: the state is kept in memory only, so a
 *   reload starts a new session
 * @property {string} [warning]          told once, e.g. when storage failed
 * @property {boolean} [again]           the same status told again, with news
 */

/** @typedef {(status: Status, detail: StatusDetail) => void} StatusListener */

/**
 * Handler of a command name: called once per command, in seq order.
 * @typedef {(args: CommandArgs, command: Command) => void} CommandHandler
 */

/** @typedef {Error & {code: string}} GatewayError */

/** @typedef {Pick<Storage, 'length' | 'key' | 'getItem' | 'setItem' | 'removeItem'>} StorageLike */

/**
 * Messages between the Clients of one storage key in other tabs (BroadcastChannel):
 * `who` asks whether a live Client holds `session`; `mine` answers the asker `to`.
 * @typedef {{type: 'who', session: string, from: string} | {type: 'mine', session: string, from: string, to: string}} TabMessage
 */

/**
 * What the client keeps in storage under its key.
 * @typedef {object} StoredState
 * @property {string | null} session
 * @property {string | null} token
 * @property {number} lastSeq
 * @property {number} nextId
 * @property {EventMessage[]} pending   sent or not, not yet acked
 */

/**
 * @typedef {object} ClientOptions
 * @property {string} app
 * @property {string | null} [url]        null: same origin
 * @property {StorageLike} [storage]      default sessionStorage (memoryStorage() if blocked)
 * @property {string[]} [transports]
 * @property {string} [path]
 * @property {number} [reconnectionDelay]
 * @property {number} [reconnectionDelayMax]
 * @property {number} [randomizationFactor]
 * @property {number} [reconnectionAttempts]
 * @property {number} [tabCheckMs]      how long connect() waits for another tab to claim the
 *   stored session (a duplicated tab); default 150, 0: do not ask
 * @property {Partial<import('socket.io-client').ManagerOptions & import('socket.io-client').SocketOptions>} [ioOptions]
 *   anything else for io(), e.g. withCredentials
 */

const EVENT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

// Connect errors the server sends on purpose; retrying them would only repeat the refusal.
/** @type {readonly string[]} */
const FATAL_CONNECT_ERRORS = ['unauthorized', 'unknown_app', 'too_many_sessions', 'bad_request'];

/**
 * @template T
 * @param {T | null | undefined} value
 * @param {T} fallback
 * @returns {T}
 */
function pick(value, fallback) {
  return value === undefined || value === null ? fallback : value;
}

/**
 * @param {string} code
 * @param {string} [message]
 * @returns {GatewayError}
 */
function gatewayError(code, message) {
  const err = /** @type {GatewayError} */ (new Error(message || code));
  err.code = code;
  return err;
}

/**
 * A random id: each Client's instance id, kept in memory only (a copied tab has its own).
 * @returns {string}
 */
function randomId() {
  const c = globalThis.crypto;
  if (c && typeof c.randomUUID === 'function') return c.randomUUID();
  return Math.random().toString(36).slice(2) + Math.random().toString(36).slice(2);
}

// How many Clients of each app were made on each storage object (one page's sessionStorage):
// the first keeps its state under "gateway:APP", the next ones under "gateway:APP#2", ...
/** @type {WeakMap<object, Map<string, number>>} */
const clientsOnStorage = new WeakMap();

/**
 * @param {StorageLike} storage
 * @param {string} app
 * @returns {string}
 */
function storageKeyFor(storage, app) {
  let counts = clientsOnStorage.get(storage);
  if (!counts) {
    counts = new Map();
    clientsOnStorage.set(storage, counts);
  }
  const n = (counts.get(app) || 0) + 1;
  counts.set(app, n);
  return 'gateway:' + app + (n > 1 ? '#' + n : '');
}

/**
 * The socket.io-client global of the classic script `vendor/socket.io.min.js`.
 * @returns {IoFactory | undefined}
 */
function globalIo() {
  return /** @type {{io?: IoFactory}} */ (globalThis).io;
}

/**
 * In-memory stand-in for sessionStorage: when storage is blocked, or for tests.
 * Nothing survives a reload with it.
 * @returns {StorageLike}
 */
export function memoryStorage() {
  /** @type {Map<string, string>} */
  const data = new Map();
  return {
    get length() { return data.size; },
    key: (i) => pick(Array.from(data.keys())[i], null),
    getItem: (k) => data.get(k) ?? null,
    setItem: (k, v) => { data.set(k, String(v)); },
    removeItem: (k) => { data.delete(k); },
  };
}

/** @returns {StorageLike} */
function defaultStorage() {
  try {
    if (globalThis.sessionStorage) return globalThis.sessionStorage;
  } catch { /* access can throw when storage is blocked */ }
  return memoryStorage();
}

export class Client {
  /** @param {ClientOptions} options */
  constructor(options) {
    const opts = options || {};
    if (!opts.app) throw new Error('Gateway.Client: option "app" is required');
    this.app = opts.app;
    this.url = opts.url || null;               // null: same origin
    this.storage = opts.storage || defaultStorage();
    // Keys starting with this belong to the client; its own for each Client of the app
    // on this storage, so two of them in one page never share state.
    this.storageKey = storageKeyFor(this.storage, this.app);
    this.instanceId = randomId(); // never stored: tells this Client from a copy of its state
    this.tabCheckMs = pick(opts.tabCheckMs, 150);
    this.transports = opts.transports;
    this.path = opts.path;
    this.backoff = {
      reconnectionDelay: pick(opts.reconnectionDelay, 500),
      reconnectionDelayMax: pick(opts.reconnectionDelayMax, 10000),
      randomizationFactor: pick(opts.randomizationFactor, 0.5),
      reconnectionAttempts: pick(opts.reconnectionAttempts, Infinity),
    };
    this.ioOptions = opts.ioOptions || {};     // anything else for io(), e.g. withCredentials

    /** @type {GatewaySocket | null} */
    this.socket = null;
    /** @type {Status} */
    this.status = 'idle';
    /** @type {StatusDetail} */
    this.statusDetail = {};
    /** @type {User | null} */
    this.user = null;
    this.ready = false;        // true between the `session` message and the next disconnect
    this.stopped = false;      // true after close(), a `close` message or a fatal refusal
    this.ended = false;        // true after a `close` message: sends fail until connect()
    this._connectedOnce = false;

    /** @type {Map<string, CommandHandler>} */
    this._handlers = new Map();
    /** @type {StatusListener[]} */
    this._statusListeners = [];
    /** @type {Map<number, {resolve: (result: unknown) => void, reject: (err: GatewayError) => void}>} */
    this._waiting = new Map(); // event id -> {resolve, reject} for events sent from this page
    /** @type {Map<number, Command>} */
    this._buffer = new Map();  // seq -> command that arrived ahead of a gap
    /** @type {ReturnType<typeof setTimeout> | null} */
    this._retryTimer = null;
    this._retryCount = 0;
    this._freshRetried = false;
    /** @type {number | null} */
    this._eventMemory = null;  // from the `session` message: most events awaiting an ack
    /** @type {Set<EventMessage>} */
    this._inFlight = new Set(); // events emitted on this connection and not acked yet
    /** @type {BroadcastChannel | null} */
    this._channel = null;      // to the Clients of this storage key in other tabs
    /** @type {{session: string, done: (taken: boolean) => void} | null} */
    this._asking = null;       // while asking the other tabs about the stored session
    this._copied = false;      // dropped a duplicated tab's copied state: told with `connected`
    /** @type {{reason: string, lost: EventReport[]} | null} */
    this._replaced = null;     // the session was given up on this side: told with the next one
    this._memoryOnly = false;  // storage failed: the state lives in memory only

    /** @type {StoredState} */
    this.state = this._load();
  }

  // ---- public API --------------------------------------------------------------------

  get sessionId() { return this.state.session; }
  get lastSeq() { return this.state.lastSeq; }
  get pendingCount() { return this.state.pending.length; }
  /** Events emitted on the current connection and not acked yet (at most `eventMemory`). */
  get inFlightCount() { return this._inFlight.size; }
  /** The most events the session lets await an ack at once (null until told). */
  get eventMemory() { return this._eventMemory; }

  /**
   * Register the handler of a command name; '*' receives every name without a handler.
   * @param {string} name
   * @param {CommandHandler} handler
   */
  on(name, handler) {
    this._handlers.set(name, handler);
    return this;
  }

  /** @param {string} name */
  off(name) {
    this._handlers.delete(name);
    return this;
  }

  /**
   * fn(status, detail): connecting, connected, reconnecting, resumed, expired, closed, unauthorized, error.
   * @param {StatusListener} fn
   * @returns {() => void} removes the listener
   */
  onStatus(fn) {
    this._statusListeners.push(fn);
    return () => {
      this._statusListeners = this._statusListeners.filter((f) => f !== fn);
    };
  }

  connect() {
    const io = globalIo();
    if (typeof io !== 'function') throw new Error('Gateway.Client: socket.io-client (global io) is not loaded');
    this.stopped = false;
    this.ended = false;
    this._freshRetried = false;
    if (this.socket) {
      this.socket.io.reconnection(true); // a `close` message turned it off
      if (!this.socket.connected) {
        this._setStatus('connecting');
        if (!this._asking) this.socket.connect(); // else: connects once the other tabs answered
      }
      return this;
    }
    /** @type {Partial<import('socket.io-client').ManagerOptions & import('socket.io-client').SocketOptions>} */
    const opts = Object.assign({}, this.ioOptions, this.backoff, {
      reconnection: true,
      autoConnect: false, // connected below, once no other tab claims the stored session
      forceNew: true, // one connection per Client: never share (and reconfigure) another's Manager
      // Function form: called on every (re)connect attempt, so each one carries fresh resume data.
      auth: (/** @type {(data: ConnectAuth) => void} */ cb) => cb({ app: this.app, resume: this._resumeData() }),
    });
    if (this.transports) opts.transports = this.transports;
    if (this.path) opts.path = this.path;
    this._setStatus('connecting');
    /** @type {GatewaySocket} */
    const socket = this.url ? io(this.url, opts) : io(opts);
    this.socket = socket;
    this._bindSocket(socket);
    this._openChannel();
    if (this._channel && this.state.session && this.tabCheckMs > 0) {
      // A duplicated tab starts with a copy of the original's sessionStorage: ask first.
      this._askOtherTabs(this.state.session).then((taken) => {
        if (taken) this._dropCopiedState();
        if (!this.stopped && !socket.connected) socket.connect();
      });
    } else {
      socket.connect();
    }
    return this;
  }

  /** Close the connection from this side. Stored state is kept, so connect() (or a reload) resumes. */
  close() {
    this.stopped = true;
    this._clearRetry();
    if (this.socket) this.socket.disconnect();
    this.ready = false;
    this._setStatus('idle');
    return this;
  }

  /** Forget the session entirely (used by "Start again"); the next connect() starts a new one. */
  reset() {
    this.ended = false;
    this._abandon('The session was reset');
    this._clearStorage();
    this.state = this._emptyState();
    this._buffer.clear();
    return this;
  }

  /**
   * Send an event; resolves with the ack's result, rejects with an Error carrying .code.
   * The event is kept until acked and survives reconnects (same id on resend).
   * @param {string} name
   * @param {unknown} [data]
   * @returns {Promise<any>}
   */
  send(name, data) {
    if (typeof name !== 'string' || !EVENT_NAME.test(name)) {
      return Promise.reject(gatewayError('bad_request', 'Invalid event name: ' + name));
    }
    if (this.ended) return Promise.reject(gatewayError('session_closed', 'The session has ended'));
    const value = data === undefined ? null : data;
    try {
      JSON.stringify(value); // kept in storage and sent as JSON: refuse what cannot be
    } catch (err) {
      return Promise.reject(gatewayError('bad_request', 'The event data is not JSON: ' + String(err)));
    }
    /** @type {EventMessage} */
    const event = { id: this.state.nextId++, name: name, data: value };
    this.state.pending.push(event);
    this._save(); // before emitting: a reload right now still resends it
    const promise = new Promise((resolve, reject) => this._waiting.set(event.id, { resolve, reject }));
    this._pump(); // emitted now if the session has room for it, else once acks make room
    return promise;
  }

  // ---- connection handling -------------------------------------------------------------

  /** @param {GatewaySocket} socket */
  _bindSocket(socket) {
    // A message without its object is read as {} (every field missing).
    socket.on('session', (msg) => this._onSession(msg || /** @type {SessionMessage} */ ({})));
    socket.on('commands', (list) => this._onCommands(list));
    socket.on('close', (msg) => this._onClose(msg || /** @type {CloseMessage} */ ({})));

    socket.on('connect_error', (err) => this._onConnectError(err));

    socket.on('disconnect', (reason) => {
      this.ready = false;
      this._inFlight.clear(); // their acks can no longer come: resent after the resume
      if (this.stopped) return;
      if (reason === 'io client disconnect') return;
      if (reason === 'io server disconnect') {
        // socket.io does not reconnect by itself after a server-side disconnect.
        this._scheduleRetry();
      }
      this._setStatus('reconnecting', { reason: reason });
    });

    socket.io.on('reconnect_attempt', (attempt) => {
      if (!this.stopped) this._setStatus(this._retrying(), { attempt: attempt });
    });
    socket.io.on('reconnect_failed', () => {
      this._setStatus('error', { code: 'unreachable', message: 'The server cannot be reached.' });
    });
  }

  /** @param {SessionMessage} msg */
  _onSession(msg) {
    const replaced = this._replaced;
    this._replaced = null;
    const hadSession = this.state.session !== null || replaced !== null;
    this._retryCount = 0;
    this._freshRetried = false;
    this._buffer.clear(); // the server replays everything after the last_seq we sent
    this.user = msg.user || null;
    const memory = Number(msg.event_memory);
    this._eventMemory = Number.isInteger(memory) && memory > 0 ? memory : null;
    this._inFlight.clear(); // a new connection: none of ours was emitted on it yet
    /** @type {EventReport[]} */
    const lost = replaced ? replaced.lost : [];

    if (msg.resumed) {
      this.state.token = msg.token || this.state.token;
    } else {
      // A new session: nothing from an older one may leak into it. Its unanswered events
      // (this page's, and those sent before a reload) are reported, never dropped silently.
      if (this.state.session !== null) {
        lost.push(...this._abandon('The previous session ended before this event was processed'));
        this.state = this._emptyState();
      }
      // Events queued before any session existed (ids from 1) are meant for this one.
      this.state.lastSeq = 0;
      this.state.session = msg.session;
      this.state.token = msg.token;
    }
    this._save();
    this.ready = true;
    this._connectedOnce = true;

    this._pump(); // resends in id order, as many as the session remembers

    /** @type {StatusDetail} */
    const detail = { session: msg.session, user: this.user, reason: msg.reason || (replaced && replaced.reason) || null };
    if (lost.length) detail.lost = lost;
    if (this._copied && !msg.resumed) detail.duplicate = true;
    this._copied = false;
    if (msg.resumed) this._setStatus('resumed', detail);
    else if (hadSession) this._setStatus('expired', detail);
    else this._setStatus('connected', detail);
  }

  /** @param {CommandsMessage} list */
  _onCommands(list) {
    if (!Array.isArray(list) || list.length === 0) return;
    for (const command of list) {
      if (!command || typeof command.seq !== 'number') continue;
      if (command.seq <= this.state.lastSeq) continue; // already applied: a replay
      this._buffer.set(command.seq, command);
    }
    // Apply in order; anything after a gap waits in the buffer until the gap is filled.
    let next;
    while ((next = this._buffer.get(this.state.lastSeq + 1))) {
      this._buffer.delete(next.seq);
      this._apply(next);
      this.state.lastSeq = next.seq;
    }
    this._save();
    // One cumulative ack per message, also for pure replays (our previous ack may have been lost).
    if (this.state.lastSeq > 0 && this.socket && this.socket.connected) {
      this.socket.emit('ack', { seq: this.state.lastSeq });
    }
  }

  /** @param {Command} command */
  _apply(command) {
    const handler = this._handlers.get(command.name) || this._handlers.get('*');
    if (!handler) return;
    try {
      handler(command.args || {}, command);
    } catch (err) {
      // Still counted as applied: re-running a half-applied command would break exactly-once.
      console.error('gateway: handler for "' + command.name + '" failed', err);
    }
  }

  /** @param {CloseMessage} msg */
  _onClose(msg) {
    this.stopped = true;
    this.ended = true;
    this.ready = false;
    this._clearRetry();
    const lost = this._abandon(msg.message || 'The session was closed');
    this._clearStorage();
    this.state = this._emptyState();
    if (this.socket) {
      this.socket.io.reconnection(false);
      this.socket.disconnect();
    }
    /** @type {StatusDetail} */
    const detail = { reason: msg.reason || 'closed', message: msg.message || '' };
    if (lost.length) detail.lost = lost;
    this._setStatus('closed', detail);
  }

  /** @param {Error & {data?: Partial<ConnectErrorData>}} err */
  _onConnectError(err) {
    if (this.stopped) return;
    const data = (err && err.data) || {};
    const code = data.code || (err && err.message) || 'error';
    const message = data.message || (err && err.message) || 'Connection refused';
    if (!FATAL_CONNECT_ERRORS.includes(code)) {
      // Transport-level failure (server down, network): socket.io retries with back-off.
      this._setStatus(this._retrying(), { code: code, message: message });
      return;
    }
    // Refused by the server: socket.io will not retry (socket.active is false).
    if (code === 'bad_request' && this._resumeData() !== null && !this._freshRetried) {
      // Our stored resume data may be corrupt: drop it and try once as a new session.
      this._freshRetried = true;
      this.state.token = null;
      this._save();
      this.socket?.connect(); // the socket whose connect failed
      return;
    }
    this.stopped = true;
    this._setStatus(code === 'unauthorized' ? 'unauthorized' : 'error', { code: code, message: message });
  }

  /**
   * Before the first session, a retry is still just "connecting".
   * @returns {Status}
   */
  _retrying() {
    return this._connectedOnce ? 'reconnecting' : 'connecting';
  }

  // Exponential back-off with jitter, for reconnects socket.io does not do by itself.
  _scheduleRetry() {
    this._clearRetry();
    const b = this.backoff;
    const base = Math.min(b.reconnectionDelayMax, b.reconnectionDelay * Math.pow(2, this._retryCount++));
    const delay = base * (1 - b.randomizationFactor + 2 * b.randomizationFactor * Math.random());
    this._retryTimer = setTimeout(() => {
      this._retryTimer = null;
      if (!this.stopped && this.socket && !this.socket.connected) this.socket.connect();
    }, delay);
  }

  _clearRetry() {
    if (this._retryTimer) clearTimeout(this._retryTimer);
    this._retryTimer = null;
  }

  /**
   * Emit the pending events, oldest first, that are not in flight on this connection yet:
   * at most `event_memory` of them await an ack at once (the oldest unacked event's result
   * is then always among those the session remembers, so its resend is answered).
   */
  _pump() {
    if (!this.ready || !this.socket) return;
    const pending = this.state.pending;
    const room = this._eventMemory === null ? pending.length : Math.min(this._eventMemory, pending.length);
    for (let i = 0; i < room; i++) {
      const event = pending[i];
      if (this._inFlight.has(event)) continue;
      this._inFlight.add(event);
      this._emitEvent(event);
    }
  }

  /** @param {EventMessage} event */
  _emitEvent(event) {
    if (!this.socket) return; // never: events are emitted only while ready, i.e. connected
    this.socket.emit('event', event, (reply) => this._onEventAck(event, reply));
  }

  /**
   * @param {EventMessage} event
   * @param {EventReply | undefined} reply
   */
  _onEventAck(event, reply) {
    this._inFlight.delete(event);
    const index = this.state.pending.indexOf(event);
    if (index === -1) return; // already settled, or given up with its session
    this.state.pending.splice(index, 1);
    this._save();
    const waiting = this._waiting.get(event.id);
    this._waiting.delete(event.id);
    /** @type {{code?: string, message?: string} | null} */
    const error = reply && reply.ok === true
      ? null
      : (reply && /** @type {{error?: object}} */ (reply).error) || {};
    const code = error ? error.code || 'internal_error' : null;
    if (waiting) {
      if (error) waiting.reject(gatewayError(code || 'internal_error', error.message || 'The event failed'));
      else waiting.resolve(/** @type {{result: unknown}} */ (reply).result);
    }
    if (code === 'event_id_reused') {
      // This tab numbers its events in an id space another tab uses too (a copy of its
      // state that no BroadcastChannel caught): give the session up, start one of its own.
      this._startOver('event_id_reused', waiting ? [] : [{ id: event.id, name: event.name, code: code }]);
      return;
    }
    if (error && !waiting) {
      // Sent before a reload: nobody waits for it in this page, but it must not vanish.
      this._announce({ failed: [{ id: event.id, name: event.name, code: code || 'internal_error' }] });
    }
    this._pump();
  }

  /**
   * Give up every event awaiting an ack (their session is over): reject this page's with
   * session_closed, and return them all (also those sent before a reload) to be reported.
   * @param {string} message
   * @returns {EventReport[]}
   */
  _abandon(message) {
    const lost = this.state.pending.map((e) => ({ id: e.id, name: e.name }));
    for (const waiting of this._waiting.values()) waiting.reject(gatewayError('session_closed', message));
    this._waiting.clear();
    this.state.pending = [];
    this._inFlight.clear();
    return lost;
  }

  /**
   * Give the session up from this side and connect again as a new one; the `expired`
   * status of the next session says why and what was lost.
   * @param {string} reason
   * @param {EventReport[]} lost
   */
  _startOver(reason, lost) {
    lost.push(...this._abandon('This tab shared its session with another tab; it starts a session of its own'));
    this._clearStorage();
    this.state = this._emptyState();
    this._buffer.clear();
    this._replaced = { reason: reason, lost: lost };
    this.ready = false;
    const socket = this.socket;
    if (!socket) return;
    socket.disconnect(); // 'io client disconnect': no status of its own
    this._setStatus('reconnecting', { reason: reason });
    if (!this.stopped) socket.connect(); // the auth callback now asks for no resume
  }

  /**
   * @param {Status} status
   * @param {StatusDetail} [detail]
   */
  _setStatus(status, detail) {
    this.status = status;
    this.statusDetail = Object.assign({ status: status }, detail || {});
    if (this._memoryOnly) this.statusDetail.storage = 'memory';
    for (const fn of this._statusListeners.slice()) {
      try {
        fn(status, this.statusDetail);
      } catch (err) {
        console.error('gateway: status listener failed', err);
      }
    }
  }

  /**
   * Tell the current status again with news (`again: true`), without the news of earlier.
   * @param {StatusDetail} news
   */
  _announce(news) {
    const detail = Object.assign({}, this.statusDetail);
    delete detail.status;
    delete detail.lost;
    delete detail.failed;
    delete detail.warning;
    delete detail.duplicate;
    this._setStatus(this.status, Object.assign(detail, news, { again: true }));
  }

  // ---- other tabs ------------------------------------------------------------------------

  // The channel to this storage key's Clients in the other tabs of this origin: opened on
  // the first connect() and kept, so this Client answers whoever asks about its session.
  _openChannel() {
    const Channel = globalThis.BroadcastChannel;
    if (this._channel || typeof Channel !== 'function') return; // e.g. an old browser
    try {
      const channel = new Channel(this.storageKey);
      channel.onmessage = (e) => this._onTabMessage(e.data);
      // In Node, an open channel would keep the process alive.
      const handle = /** @type {{unref?: () => void}} */ (/** @type {unknown} */ (channel));
      if (typeof handle.unref === 'function') handle.unref();
      this._channel = channel;
    } catch (err) {
      console.warn('gateway: no BroadcastChannel; a duplicated tab cannot be told apart', err);
    }
  }

  /**
   * Whether a live Client in another tab holds `session` (answers within tabCheckMs).
   * @param {string} session
   * @returns {Promise<boolean>}
   */
  _askOtherTabs(session) {
    return new Promise((resolve) => {
      /** @param {boolean} taken */
      const done = (taken) => {
        clearTimeout(timer);
        this._asking = null;
        resolve(taken);
      };
      const timer = setTimeout(() => done(false), this.tabCheckMs);
      this._asking = { session: session, done: done };
      this._postTab({ type: 'who', session: session, from: this.instanceId });
    });
  }

  /** @param {TabMessage} msg */
  _postTab(msg) {
    try {
      if (this._channel) this._channel.postMessage(msg);
    } catch (err) {
      console.warn('gateway: could not ask the other tabs', err);
    }
  }

  /** @param {unknown} data */
  _onTabMessage(data) {
    const msg = /** @type {Partial<{type: string, session: string, from: string, to: string}>} */ (
      data && typeof data === 'object' ? data : {});
    if (typeof msg.from !== 'string' || msg.from === this.instanceId || typeof msg.session !== 'string') return;
    if (msg.type === 'who') {
      if (msg.session !== this.state.session || this.stopped || this.ended) return;
      // Two copies asking at once (tabs restored together): the larger instance id keeps it.
      if (this._asking && !(this.instanceId > msg.from)) return;
      this._postTab({ type: 'mine', session: msg.session, from: this.instanceId, to: msg.from });
    } else if (msg.type === 'mine') {
      if (this._asking && msg.to === this.instanceId && msg.session === this._asking.session) this._asking.done(true);
    }
  }

  /**
   * Another live tab holds the stored session: this tab is its copy. Its session, token,
   * position and pending events are the other tab's; keep only what this page sent itself
   * (numbered afresh) and open a session of its own.
   */
  _dropCopiedState() {
    const own = this.state.pending.filter((e) => this._waiting.has(e.id));
    const waiting = this._waiting;
    this._clearStorage(); // this tab's copy only: sessionStorage is per tab
    this.state = this._emptyState();
    this._waiting = new Map();
    for (const event of own) {
      const settle = waiting.get(event.id);
      event.id = this.state.nextId++;
      this.state.pending.push(event);
      if (settle) this._waiting.set(event.id, settle);
    }
    this._buffer.clear();
    this._copied = true;
    this._save();
  }

  // ---- stored state --------------------------------------------------------------------

  /** @returns {StoredState} */
  _emptyState() {
    return { session: null, token: null, lastSeq: 0, nextId: 1, pending: [] };
  }

  /** @returns {ResumeRequest | null} */
  _resumeData() {
    const s = this.state;
    if (!s.session || !s.token) return null;
    return { session: s.session, token: s.token, last_seq: s.lastSeq };
  }

  /** @returns {StoredState} */
  _load() {
    let state = this._emptyState();
    try {
      const saved = JSON.parse(this.storage.getItem(this.storageKey) || 'null');
      if (saved && typeof saved === 'object') {
        state = {
          session: saved.session || null,
          token: saved.token || null,
          lastSeq: Number(saved.lastSeq) || 0,
          nextId: Number(saved.nextId) || 1,
          pending: Array.isArray(saved.pending) ? saved.pending : [],
        };
      }
    } catch (err) {
      console.warn('gateway: ignoring unreadable stored state', err);
    }
    return state;
  }

  _save() {
    try {
      this.storage.setItem(this.storageKey, JSON.stringify(this.state));
    } catch (err) {
      this._keepInMemory(err);
    }
  }

  /**
   * Storage failed (its quota is full): the state in memory is the true one. Keep it in
   * memory from now on and remove the stored copy, which is behind (a reload resuming from
   * it would ask for commands again, or lose events): a reload then starts afresh.
   * @param {unknown} err
   */
  _keepInMemory(err) {
    if (this._memoryOnly) { // memoryStorage() does not fail; a storage passed in may
      console.warn('gateway: could not keep session state', err);
      return;
    }
    const failed = this.storage;
    this.storage = memoryStorage(); // the renderer's journal follows: it reads client.storage
    this._memoryOnly = true;
    this._clearStorage(failed);
    this.storage.setItem(this.storageKey, JSON.stringify(this.state));
    const message = 'This tab could not save its session (storage is full); a reload will start a new session.';
    console.warn('gateway: ' + message, err);
    this._announce({ warning: message });
  }

  /**
   * Removes the client's key and every "<key>:..." key (e.g. the renderer's view journal).
   * @param {StorageLike} [storage]
   */
  _clearStorage(storage) {
    const store = storage || this.storage;
    try {
      const prefix = this.storageKey + ':';
      /** @type {string[]} */
      const doomed = [];
      for (let i = 0; i < store.length; i++) {
        const key = store.key(i);
        if (key === this.storageKey || (key && key.startsWith(prefix))) doomed.push(key);
      }
      doomed.forEach((key) => store.removeItem(key));
    } catch (err) {
      console.warn('gateway: could not clear stored state', err);
    }
  }
}
