// @ts-check
/*
 * Chat demo: everyone on the `chat` app shares the lobby. The box sends `chat.say` {text};
 * the server relays it to every session as the command `chat.message` {user, text, at?},
 * which lands in #chat-log.
 *
 * The log is kept in storage next to the client's state, so a reload of the tab shows
 * it again (the server does not replay commands that were already applied).
 *
 * Mounted by page.js before the client connects.
 */
import { composer } from '../renderer.js';

/** @import { Client, GatewayError } from '../gateway.js' */

/**
 * The args of the command `chat.message` (and a line of the stored log).
 * @typedef {object} ChatMessage
 * @property {string} user
 * @property {string} text
 * @property {number | string} [at]   seconds or milliseconds since the epoch, or a date string
 */

/**
 * The log kept in storage, for the session it belongs to.
 * @typedef {object} ChatLog
 * @property {string | null} session
 * @property {ChatMessage[]} lines
 */

/**
 * The args of the command `presence`: cluster-wide presence of a topic.
 * @typedef {object} PresenceArgs
 * @property {{id: number, name: string}} user
 * @property {string} topic
 * @property {boolean} present
 */

/**
 * @param {Client} client
 * @param {HTMLElement} root   the renderer's output
 */
export function mount(client, root) {
  const storageKey = client.storageKey + ':chat'; // removed with the client's state
  const MAX_LINES = 200;

  const section = document.createElement('section');
  section.className = 'gw-card gw-chat';
  section.setAttribute('aria-label', 'Chat');

  const log = section.appendChild(document.createElement('ul'));
  log.id = 'chat-log';
  log.setAttribute('aria-live', 'polite');
  const emptyNote = section.insertBefore(document.createElement('p'), log);
  emptyNote.className = 'gw-hint gw-chat-empty';
  emptyNote.textContent = 'No messages yet. Say hello — everyone in the lobby sees it.';

  const form = section.appendChild(document.createElement('form'));
  form.id = 'chat-form';
  form.className = 'gw-input-row';
  form.autocomplete = 'off';
  const problem = section.appendChild(document.createElement('p'));
  problem.className = 'gw-field-error';
  problem.setAttribute('role', 'alert');
  const { input } = composer(client, form, {
    placeholder: 'Message the lobby',
    ariaLabel: 'Message',
    onSend: (text) => {
      problem.textContent = '';
      return client.send('chat.say', { text: text }).catch((/** @type {GatewayError} */ err) => {
        problem.textContent = 'Not sent: ' + err.message;
        throw err;
      });
    },
  });

  /** @type {ChatLog} */
  let saved = { session: null, lines: [] };

  /** @param {ChatMessage} msg */
  function addLine(msg) {
    const li = document.createElement('li');
    li.textContent = String(msg.user) + ': ' + String(msg.text);
    if (client.user && msg.user === client.user.name) li.className = 'mine';
    if (msg.at) {
      const at = new Date(typeof msg.at === 'number' && msg.at < 1e12 ? msg.at * 1000 : msg.at);
      if (!isNaN(at.getTime())) li.title = at.toLocaleString();
    }
    log.appendChild(li);
    emptyNote.hidden = true;
    log.scrollTop = log.scrollHeight;
  }

  /** @param {ChatMessage} msg */
  function save(msg) {
    if (!client.sessionId) return;
    if (saved.session !== client.sessionId) saved = { session: client.sessionId, lines: [] };
    saved.lines.push({ user: msg.user, text: msg.text, at: msg.at });
    if (saved.lines.length > MAX_LINES) saved.lines.splice(0, saved.lines.length - MAX_LINES);
    try { client.storage.setItem(storageKey, JSON.stringify(saved)); } catch { /* display only */ }
  }

  // Restore the log of the session this tab is about to resume.
  try {
    const stored = JSON.parse(client.storage.getItem(storageKey) || 'null');
    if (stored && stored.session && stored.session === client.sessionId && Array.isArray(stored.lines)) {
      saved = stored;
      saved.lines.forEach(addLine);
    }
  } catch { /* ignore a damaged log */ }

  client.on('chat.message', (args) => {
    const msg = /** @type {ChatMessage} */ (args || {});
    addLine(msg);
    save(msg);
  });

  // Cluster-wide presence of the lobby: {user: {id, name}, topic, present}.
  client.on('presence', (args) => {
    const presence = /** @type {Partial<PresenceArgs> | null} */ (args);
    if (!presence || !presence.user || presence.topic !== 'lobby') return;
    const li = document.createElement('li');
    li.className = 'presence';
    li.textContent = String(presence.user.name) + (presence.present ? ' joined' : ' left') + ' the lobby';
    log.appendChild(li);
    emptyNote.hidden = true;
    log.scrollTop = log.scrollHeight;
  });

  root.before(section);
  input.focus();
}
