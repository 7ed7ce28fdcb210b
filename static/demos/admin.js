// @ts-check
/*
 * Admin page: the server's `admin` app sends the live sessions as an `output` table
 * (scope "sessions"), drawn by the default renderer. This script adds a Kick button to
 * each row; a click sends the event `kick` {session: ID}, which ends that session with
 * the close reason `kicked`. The row of this tab's own session gets no button.
 *
 * Built with DOM calls and textContent only. Mounted by page.js before the client connects.
 */

/** @import { Client, GatewayError } from '../gateway.js' */

/**
 * @param {Client} client
 * @param {HTMLElement} root   the renderer's output
 */
export function mount(client, root) {
  const intro = document.createElement('section');
  intro.className = 'gw-card';
  const hint = intro.appendChild(document.createElement('p'));
  hint.className = 'gw-hint';
  hint.textContent = 'Live sessions, refreshed as they change. Kick ends a session at once; ' +
    'its tab is told it was ended by an administrator.';
  const result = intro.appendChild(document.createElement('p'));
  result.id = 'admin-result';
  result.className = 'gw-hint';
  result.setAttribute('aria-live', 'polite');
  root.before(intro);

  /**
   * @param {string} id
   * @param {HTMLButtonElement} button
   */
  function kick(id, button) {
    button.disabled = true;
    result.textContent = 'Ending session ' + id + '…';
    client.send('kick', { session: id }).then(() => {
      result.textContent = 'Session ' + id + ' ended.';
    }, (/** @type {GatewayError} */ err) => {
      button.disabled = false;
      result.textContent = 'Could not end session ' + id + ': ' + err.message;
    });
  }

  /** @param {HTMLTableElement} table */
  function decorate(table) {
    if (table.dataset.adminKick) return;
    table.dataset.adminKick = '1';
    const headers = Array.from(table.querySelectorAll('thead th')).map((th) => th.textContent);
    const column = headers.indexOf('session');
    if (column < 0) return;
    const headRow = /** @type {HTMLTableRowElement} */ (table.querySelector('thead tr'));
    const th = headRow.appendChild(document.createElement('th'));
    th.scope = 'col';
    th.textContent = 'action';
    table.querySelectorAll('tbody tr').forEach((tr) => {
      const id = tr.children[column] ? tr.children[column].textContent : '';
      const td = tr.appendChild(document.createElement('td'));
      if (!id) return;
      if (id === client.sessionId) {
        td.textContent = 'this tab';
        return;
      }
      const button = td.appendChild(document.createElement('button'));
      button.type = 'button';
      button.className = 'gw-button gw-quiet';
      button.textContent = 'Kick';
      button.setAttribute('aria-label', 'Kick session ' + id);
      button.addEventListener('click', () => kick(id, button));
    });
  }

  function decorateAll() {
    root.querySelectorAll('.gw-scope[data-scope="sessions"] table').forEach((table) => {
      if (table instanceof HTMLTableElement) decorate(table);
    });
  }

  new MutationObserver(decorateAll).observe(root, { childList: true, subtree: true });
  decorateAll(); // tables restored from the journal before the demo was mounted
}
