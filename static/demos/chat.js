/*
 * Chat demo: everyone on the `chat` app shares the lobby. The box sends `chat.say` {text};
 * the server relays it to every session as the command `chat.message` {user, text, at?},
 * which lands in #chat-log.
 *
 * The log is kept in storage next to the client's state, so a reload of the tab shows
 * it again (the server does not replay commands that were already applied).
 */
(function () {
  'use strict';

  const client = window.gatewayClient;
  const root = document.getElementById('gw-output');
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
  const { input } = GatewayRenderer.composer(client, form, {
    placeholder: 'Message the lobby',
    ariaLabel: 'Message',
    onSend: (text) => {
      problem.textContent = '';
      return client.send('chat.say', { text: text }).catch((err) => {
        problem.textContent = 'Not sent: ' + err.message;
        throw err;
      });
    },
  });

  let saved = { session: null, lines: [] };

  function addLine(msg) {
    const li = document.createElement('li');
    li.textContent = String(msg.user) + ': ' + String(msg.text);
    if (client.user && msg.user === client.user.name) li.className = 'mine';
    if (msg.at) {
      const at = new Date(typeof msg.at === 'number' && msg.at < 1e12 ? msg.at * 1000 : msg.at);
      if (!isNaN(at)) li.title = at.toLocaleString();
    }
    log.appendChild(li);
    emptyNote.hidden = true;
    log.scrollTop = log.scrollHeight;
  }

  function save(msg) {
    if (!client.sessionId) return;
    if (saved.session !== client.sessionId) saved = { session: client.sessionId, lines: [] };
    saved.lines.push({ user: msg.user, text: msg.text, at: msg.at });
    if (saved.lines.length > MAX_LINES) saved.lines.splice(0, saved.lines.length - MAX_LINES);
    try { client.storage.setItem(storageKey, JSON.stringify(saved)); } catch (err) { /* display only */ }
  }

  // Restore the log of the session this tab is about to resume.
  try {
    const stored = JSON.parse(client.storage.getItem(storageKey) || 'null');
    if (stored && stored.session && stored.session === client.sessionId && Array.isArray(stored.lines)) {
      saved = stored;
      saved.lines.forEach(addLine);
    }
  } catch (err) { /* ignore a damaged log */ }

  client.on('chat.message', (args) => {
    addLine(args || {});
    save(args || {});
  });

  // Cluster-wide presence of the lobby: {user: {id, name}, topic, present}.
  client.on('presence', (args) => {
    if (!args || !args.user || args.topic !== 'lobby') return;
    const li = document.createElement('li');
    li.className = 'presence';
    li.textContent = String(args.user.name) + (args.present ? ' joined' : ' left') + ' the lobby';
    log.appendChild(li);
    emptyNote.hidden = true;
    log.scrollTop = log.scrollHeight;
  });

  root.parentNode.insertBefore(section, root);
  input.focus();
})();
