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
 *   with the same id after a resume, so the server can answer duplicates.
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
 * @typedef {'bad_request' | 'unknown_event' | 'rate_limited' | 'too_large' | 'internal_error' | 'session_closed'} EventErrorCode
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
 * The detail passed with a status (which fields are set depends on the status).
 * @typedef {object} StatusDetail
 * @property {Status} [status]
 * @property {string} [session]
 * @property {User | null} [user]
 * @property {string | null} [reason]
 * @property {string} [code]
 * @property {string} [message]
 * @property {number} [attempt]
 */

/** @typedef {(status: Status, detail: StatusDetail) => void} StatusListener */

/**
 * Handler of a command name: called once per command, in seq order.
 * @typedef {(args: CommandArgs, command: Command) => void} CommandHandler
 */

/** @typedef {Error & {code: string}} GatewayError */

/** @typedef {Pick<Storage, 'length' | 'key' | 'getItem' | 'setItem' | 'removeItem'>} StorageLike */

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
    this.storageKey = 'gateway:' + this.app;   // keys starting with this belong to the client
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

    /** @type {StoredState} */
    this.state = this._load();
  }

  // ---- public API --------------------------------------------------------------------

  get sessionId() { return this.state.session; }
  get lastSeq() { return this.state.lastSeq; }
  get pendingCount() { return this.state.pending.length; }

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
        this.socket.connect();
      }
      return this;
    }
    /** @type {Partial<import('socket.io-client').ManagerOptions & import('socket.io-client').SocketOptions>} */
    const opts = Object.assign({}, this.ioOptions, this.backoff, {
      reconnection: true,
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
    this._rejectAll('session_closed', 'The session was reset');
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
    /** @type {EventMessage} */
    const event = { id: this.state.nextId++, name: name, data: data === undefined ? null : data };
    this.state.pending.push(event);
    this._save(); // before emitting: a reload right now still resends it
    const promise = new Promise((resolve, reject) => this._waiting.set(event.id, { resolve, reject }));
    if (this.ready) this._emitEvent(event);
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
    const hadSession = this.state.session !== null;
    this._retryCount = 0;
    this._freshRetried = false;
    this._buffer.clear(); // the server replays everything after the last_seq we sent
    this.user = msg.user || null;

    if (msg.resumed) {
      this.state.token = msg.token || this.state.token;
    } else {
      // A new session: nothing from an older one may leak into it.
      if (hadSession) {
        this._rejectAll('session_closed', 'The previous session ended before this event was processed');
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

    for (const event of this.state.pending) this._emitEvent(event);

    /** @type {StatusDetail} */
    const detail = { session: msg.session, user: this.user, reason: msg.reason || null };
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
    this._rejectAll('session_closed', msg.message || 'The session was closed');
    this._clearStorage();
    this.state = this._emptyState();
    if (this.socket) {
      this.socket.io.reconnection(false);
      this.socket.disconnect();
    }
    this._setStatus('closed', { reason: msg.reason || 'closed', message: msg.message || '' });
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

  /** @param {EventMessage} event */
  _emitEvent(event) {
    if (!this.socket) return; // never: events are emitted only while ready, i.e. connected
    this.socket.emit('event', event, (reply) => this._onEventAck(event.id, reply));
  }

  /**
   * @param {number} id
   * @param {EventReply | undefined} reply
   */
  _onEventAck(id, reply) {
    const index = this.state.pending.findIndex((e) => e.id === id);
    if (index === -1) return; // already settled (answer to an earlier copy)
    this.state.pending.splice(index, 1);
    this._save();
    const waiting = this._waiting.get(id);
    this._waiting.delete(id);
    if (!waiting) return; // sent before a page reload: nobody is waiting any more
    if (reply && reply.ok === true) {
      waiting.resolve(reply.result);
    } else {
      /** @type {{code?: string, message?: string}} */
      const error = (reply && /** @type {{error?: object}} */ (reply).error) || {};
      waiting.reject(gatewayError(error.code || 'internal_error', error.message || 'The event failed'));
    }
  }

  /**
   * @param {string} code
   * @param {string} message
   */
  _rejectAll(code, message) {
    for (const waiting of this._waiting.values()) waiting.reject(gatewayError(code, message));
    this._waiting.clear();
    this.state.pending = [];
  }

  /**
   * @param {Status} status
   * @param {StatusDetail} [detail]
   */
  _setStatus(status, detail) {
    this.status = status;
    this.statusDetail = Object.assign({ status: status }, detail || {});
    for (const fn of this._statusListeners.slice()) {
      try {
        fn(status, this.statusDetail);
      } catch (err) {
        console.error('gateway: status listener failed', err);
      }
    }
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
      console.warn('gateway: could not store session state', err);
    }
  }

  // Removes the client's key and every "<key>:..." key (e.g. the renderer's view journal).
  _clearStorage() {
    try {
      const prefix = this.storageKey + ':';
      /** @type {string[]} */
      const doomed = [];
      for (let i = 0; i < this.storage.length; i++) {
        const key = this.storage.key(i);
        if (key === this.storageKey || (key && key.startsWith(prefix))) doomed.push(key);
      }
      doomed.forEach((key) => this.storage.removeItem(key));
    } catch (err) {
      console.warn('gateway: could not clear stored state', err);
    }
  }
}
