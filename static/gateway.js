/*
 * gateway.js - browser client for the session gateway (Protocol v1, see DESIGN.md).
 *
 * Needs the official socket.io-client loaded first (global `io`).
 *
 *   const client = new Gateway.Client({app: "hello"});
 *   client.on("output", (args, command) => { ... });
 *   client.onStatus((status, detail) => { ... });
 *   client.connect();
 *   client.send("echo", {text: "hi"}).then(result => ...);
 *
 * What it guarantees on its side of the contract:
 * - commands are applied once each, in seq order, across reconnects and reloads
 *   (last applied seq lives in storage and is sent back when resuming);
 * - events are kept (in storage too) until the server acks them and are resent
 *   with the same id after a resume, so the server can answer duplicates.
 */
(function (global) {
  'use strict';

  const EVENT_NAME = /^[a-z0-9][a-z0-9._-]{0,63}$/;

  // Connect errors the server sends on purpose; retrying them would only repeat the refusal.
  const FATAL_CONNECT_ERRORS = ['unauthorized', 'unknown_app', 'too_many_sessions', 'bad_request'];

  function pick(value, fallback) {
    return value === undefined || value === null ? fallback : value;
  }

  function gatewayError(code, message) {
    const err = new Error(message || code);
    err.code = code;
    return err;
  }

  // In-memory stand-in for sessionStorage: when storage is blocked, or for tests.
  // Nothing survives a reload with it.
  function memoryStorage() {
    const data = new Map();
    return {
      get length() { return data.size; },
      key: (i) => pick(Array.from(data.keys())[i], null),
      getItem: (k) => (data.has(k) ? data.get(k) : null),
      setItem: (k, v) => { data.set(k, String(v)); },
      removeItem: (k) => { data.delete(k); },
    };
  }

  function defaultStorage() {
    try {
      if (global.sessionStorage) return global.sessionStorage;
    } catch (e) { /* access can throw when storage is blocked */ }
    return memoryStorage();
  }

  class Client {
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

      this.socket = null;
      this.status = 'idle';
      this.statusDetail = {};
      this.user = null;
      this.ready = false;        // true between the `session` message and the next disconnect
      this.stopped = false;      // true after close(), a `close` message or a fatal refusal
      this.ended = false;        // true after a `close` message: sends fail until connect()
      this._connectedOnce = false;

      this._handlers = new Map();
      this._statusListeners = [];
      this._waiting = new Map(); // event id -> {resolve, reject} for events sent from this page
      this._buffer = new Map();  // seq -> command that arrived ahead of a gap
      this._retryTimer = null;
      this._retryCount = 0;
      this._freshRetried = false;

      this._load();
    }

    // ---- public API ------------------------------------------------------------------

    get sessionId() { return this.state.session; }
    get lastSeq() { return this.state.lastSeq; }
    get pendingCount() { return this.state.pending.length; }

    /** Register the handler of a command name; '*' receives every name without a handler. */
    on(name, handler) {
      this._handlers.set(name, handler);
      return this;
    }

    off(name) {
      this._handlers.delete(name);
      return this;
    }

    /** fn(status, detail): connecting, connected, reconnecting, resumed, expired, closed, unauthorized, error. */
    onStatus(fn) {
      this._statusListeners.push(fn);
      return () => {
        this._statusListeners = this._statusListeners.filter((f) => f !== fn);
      };
    }

    connect() {
      if (typeof global.io !== 'function') throw new Error('Gateway.Client: socket.io-client (global io) is not loaded');
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
      const opts = Object.assign({}, this.ioOptions, this.backoff, {
        reconnection: true,
        forceNew: true, // one connection per Client: never share (and reconfigure) another's Manager
        // Function form: called on every (re)connect attempt, so each one carries fresh resume data.
        auth: (cb) => cb({ app: this.app, resume: this._resumeData() }),
      });
      if (this.transports) opts.transports = this.transports;
      if (this.path) opts.path = this.path;
      this._setStatus('connecting');
      this.socket = this.url ? global.io(this.url, opts) : global.io(opts);
      this._bindSocket(this.socket);
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
     */
    send(name, data) {
      if (typeof name !== 'string' || !EVENT_NAME.test(name)) {
        return Promise.reject(gatewayError('bad_request', 'Invalid event name: ' + name));
      }
      if (this.ended) return Promise.reject(gatewayError('session_closed', 'The session has ended'));
      const event = { id: this.state.nextId++, name: name, data: data === undefined ? null : data };
      this.state.pending.push(event);
      this._save(); // before emitting: a reload right now still resends it
      const promise = new Promise((resolve, reject) => this._waiting.set(event.id, { resolve, reject }));
      if (this.ready) this._emitEvent(event);
      return promise;
    }

    // ---- connection handling -----------------------------------------------------------

    _bindSocket(socket) {
      socket.on('session', (msg) => this._onSession(msg || {}));
      socket.on('commands', (list) => this._onCommands(list));
      socket.on('close', (msg) => this._onClose(msg || {}));

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

      const detail = { session: msg.session, user: this.user, reason: msg.reason || null };
      if (msg.resumed) this._setStatus('resumed', detail);
      else if (hadSession) this._setStatus('expired', detail);
      else this._setStatus('connected', detail);
    }

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
        this.socket.connect();
        return;
      }
      this.stopped = true;
      this._setStatus(code === 'unauthorized' ? 'unauthorized' : 'error', { code: code, message: message });
    }

    // Before the first session, a retry is still just "connecting".
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

    _emitEvent(event) {
      this.socket.emit('event', event, (reply) => this._onEventAck(event.id, reply));
    }

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
        const error = (reply && reply.error) || {};
        waiting.reject(gatewayError(error.code || 'internal_error', error.message || 'The event failed'));
      }
    }

    _rejectAll(code, message) {
      for (const waiting of this._waiting.values()) waiting.reject(gatewayError(code, message));
      this._waiting.clear();
      this.state.pending = [];
    }

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

    // ---- stored state ------------------------------------------------------------------

    _emptyState() {
      return { session: null, token: null, lastSeq: 0, nextId: 1, pending: [] };
    }

    _resumeData() {
      const s = this.state;
      if (!s.session || !s.token) return null;
      return { session: s.session, token: s.token, last_seq: s.lastSeq };
    }

    _load() {
      this.state = this._emptyState();
      try {
        const saved = JSON.parse(this.storage.getItem(this.storageKey) || 'null');
        if (saved && typeof saved === 'object') {
          this.state = {
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

  global.Gateway = { Client: Client, memoryStorage: memoryStorage };
})(typeof window !== 'undefined' ? window : globalThis);
