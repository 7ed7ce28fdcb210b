// @ts-check
/*
 * page.js - the entry of an app page (pages/app.html): one client for the page's app,
 * the default renderer and status pill, a notice once the session or the login is over,
 * the app's demo module if it has one (static/demos/NAME.js), then connect.
 *
 * The template passes what only the server knows as JSON in
 * <script type="application/json" id="gw-page-config">: see PageConfig.
 */
import { Client } from './gateway.js';
import { attach, attachStatus } from './renderer.js';

/**
 * @typedef {object} PageConfig
 * @property {string} app          the app's name
 * @property {string} loginUrl     the login page (with the script root)
 * @property {string | null} demo  URL of the app's demo module, if it has one
 */

/**
 * A demo module: draws its own controls around the renderer's output. Mounted before the
 * client connects, so its command handlers see every command.
 * @typedef {object} DemoModule
 * @property {(client: Client, root: HTMLElement) => void} mount
 */

/**
 * @param {string} id
 * @returns {HTMLElement}
 */
function byId(id) {
  const node = document.getElementById(id);
  if (!node) throw new Error('page.js: no #' + id + ' on the page');
  return node;
}

/**
 * When the session is over (or the login is), say what to do next.
 * @param {Client} client
 * @param {HTMLElement} notice
 * @param {string} loginUrl
 */
function showWhatNext(client, notice, loginUrl) {
  client.onStatus((status, detail) => {
    while (notice.firstChild) notice.removeChild(notice.firstChild);
    const signedOut = status === 'unauthorized' || (status === 'closed' && detail.reason === 'logged_out');
    notice.hidden = status !== 'closed' && status !== 'unauthorized';
    if (signedOut) {
      const q = notice.appendChild(document.createElement('p'));
      q.textContent = 'You are signed out. ';
      const link = q.appendChild(document.createElement('a'));
      link.textContent = 'Log in again';
      link.href = loginUrl + '?next=' + encodeURIComponent(window.location.pathname + window.location.search);
    } else if (status === 'closed') {
      const p = notice.appendChild(document.createElement('p'));
      p.textContent = 'This session has ended. Start a new one whenever you like.';
      const again = notice.appendChild(document.createElement('button'));
      again.type = 'button';
      again.id = 'gw-start-again';
      again.className = 'gw-button gw-primary';
      again.textContent = 'Start again';
      again.addEventListener('click', () => {
        client.reset(); // forget the old session so the reload starts a new one
        window.location.reload();
      });
    }
  });
}

/** @type {PageConfig} */
const config = JSON.parse(byId('gw-page-config').textContent || '{}');
const output = byId('gw-output');
const client = new Client({ app: config.app });
// Deliberately global: the page's client as window.gatewayClient, for the browser tests
// (tests/test_browser.py) and for a look from the console.
/** @type {Window & {gatewayClient?: Client}} */ (window).gatewayClient = client;

attach(client, output);
attachStatus(client, byId('gw-status'), { loginUrl: config.loginUrl });
showWhatNext(client, byId('gw-notice'), config.loginUrl);

try {
  if (config.demo) {
    const demo = /** @type {DemoModule} */ (await import(config.demo));
    demo.mount(client, output);
  }
} finally {
  client.connect(); // even if the demo failed (its error is still reported)
}
