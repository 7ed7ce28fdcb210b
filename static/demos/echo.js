/*
 * Echo demo: a text box that sends the event `echo` {text}. The server answers twice:
 * the ack carries the same text (shown under the box), and an `output` command
 * (drawn by the renderer in #gw-output).
 */
(function () {
  'use strict';

  const client = window.gatewayClient;
  const root = document.getElementById('gw-output');

  const form = document.createElement('form');
  form.id = 'echo-form';
  form.className = 'gw-card gw-compose';
  form.autocomplete = 'off';

  const label = form.appendChild(document.createElement('label'));
  label.htmlFor = 'echo-text';
  label.textContent = 'Say something and the server echoes it back';

  const row = form.appendChild(document.createElement('div'));
  row.className = 'gw-input-row';
  const input = row.appendChild(document.createElement('input'));
  input.id = 'echo-text';
  input.name = 'text';
  input.type = 'text';
  input.placeholder = 'Type a message';
  input.maxLength = 2000;
  input.required = true;
  const button = row.appendChild(document.createElement('button'));
  button.type = 'submit';
  button.className = 'gw-button gw-primary';
  button.textContent = 'Send';

  const result = form.appendChild(document.createElement('p'));
  result.id = 'echo-result';
  result.className = 'gw-hint';
  result.setAttribute('aria-live', 'polite');

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    input.focus();
    delete result.dataset.state;
    result.textContent = 'Sending…';
    client.send('echo', { text: text })
      .then((reply) => {
        result.dataset.state = 'ok';
        result.textContent = 'Server acknowledged: ' + (typeof reply === 'string' ? reply : JSON.stringify(reply));
      })
      .catch((err) => {
        result.dataset.state = 'error';
        result.textContent = 'Not delivered: ' + err.message;
      });
  });

  // Once the session is over, the box can no longer be answered.
  client.onStatus((status) => {
    const over = status === 'closed' || status === 'unauthorized';
    input.disabled = over;
    button.disabled = over;
  });

  root.parentNode.insertBefore(form, root);
  input.focus();
})();
