// @ts-check
/*
 * Echo demo: a text box that sends the event `echo` {text}. The server answers twice:
 * the ack carries the same text (shown under the box), and an `output` command
 * (drawn by the renderer in #gw-output).
 *
 * Mounted by page.js before the client connects.
 */
import { composer } from '../renderer.js';

/** @import { Client, GatewayError } from '../gateway.js' */

/**
 * @param {Client} client
 * @param {HTMLElement} root   the renderer's output
 */
export function mount(client, root) {
  const form = document.createElement('form');
  form.id = 'echo-form';
  form.className = 'gw-card gw-compose';
  form.autocomplete = 'off';

  const label = form.appendChild(document.createElement('label'));
  label.htmlFor = 'echo-text';
  label.textContent = 'Say something and the server echoes it back';

  const row = form.appendChild(document.createElement('div'));
  row.className = 'gw-input-row';
  const result = document.createElement('p');
  result.id = 'echo-result';
  result.className = 'gw-hint';
  result.setAttribute('aria-live', 'polite');

  const { input } = composer(client, form, {
    row: row,
    id: 'echo-text',
    placeholder: 'Type a message',
    onSend: (text) => {
      delete result.dataset.state;
      result.textContent = 'Sending…';
      return client.send('echo', { text: text })
        .then((reply) => {
          result.dataset.state = 'ok';
          result.textContent = 'Server acknowledged: ' + (typeof reply === 'string' ? reply : JSON.stringify(reply));
        }, (/** @type {GatewayError} */ err) => {
          result.dataset.state = 'error';
          result.textContent = 'Not delivered: ' + err.message;
        });
    },
  });
  form.appendChild(result);

  root.before(form);
  input.focus();
}
