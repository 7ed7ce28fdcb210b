// @ts-check
/*
 * renderer.js - default renderer of the built-in command vocabulary (DESIGN.md,
 * "Built-in command vocabulary"), on top of gateway.js. A native ES module.
 *
 *   import { attach, attachStatus } from './renderer.js';
 *   const view = attach(client, document.getElementById('gw-output'));
 *   attachStatus(client, document.getElementById('gw-status'));
 *
 * Safety rule: content from the server only ever reaches the page as text nodes or as
 * attributes set through the DOM; nothing is assigned to innerHTML.
 *
 * Reloads: a reload resumes the session, but the server only replays commands that were
 * not applied yet. So that the page does not come back empty, the renderer keeps a journal
 * of what it rendered in storage (key "<client.storageKey>:view") and re-renders it on load
 * when it belongs to the session being resumed. Re-rendering is display only: handlers are
 * not run twice and nothing is sent.
 */

/** @import { Client, CommandArgs, CommandHandler, EventReport, GatewayError, Status, StatusListener } from './gateway.js' */

// ---- the built-in vocabulary's arguments (DESIGN.md) ------------------------------------
// As sent by an app, unchecked: the renderer copes with missing or mistyped fields.

/**
 * Where a command draws: a container [data-scope=NAME] in the root; none: the root itself.
 * @typedef {string | number | null} Scope
 */

/**
 * `output`: text is never parsed as HTML.
 * @typedef {object} OutputArgs
 * @property {'text' | 'markdown' | 'json' | 'table'} [kind]   anything else: json
 * @property {unknown} [content]      for a table: a list of rows (lists, or objects by column)
 * @property {unknown[]} [header]     for a table of lists
 * @property {Scope} [scope]
 */

/**
 * An option of `input` (kind select) or a button of `buttons`; any other value v stands
 * for {label: v, value: v}.
 * @typedef {object} Choice
 * @property {unknown} [label]
 * @property {unknown} [value]
 */

/**
 * `input`: answered with the event `input.reply` {request, value}.
 * @typedef {object} InputArgs
 * @property {unknown} [request]
 * @property {'text' | 'password' | 'number' | 'select' | 'checkbox'} [kind]
 * @property {string} [label]
 * @property {Array<unknown | Choice>} [options]   for select
 * @property {unknown} [value]        initial value
 * @property {string} [placeholder]
 * @property {string} [submit]        the button's text
 * @property {Scope} [scope]
 */

/**
 * `buttons`: answered with the event `buttons.reply` {request, value}.
 * @typedef {object} ButtonsArgs
 * @property {unknown} [request]
 * @property {Array<unknown | Choice>} [buttons]
 * @property {string} [label]
 * @property {Scope} [scope]
 */

/**
 * `progress`: one bar per id, updated in place; no value: indeterminate.
 * @typedef {object} ProgressArgs
 * @property {unknown} [id]
 * @property {number | null} [value]
 * @property {number} [max]           default 100
 * @property {unknown} [label]
 * @property {Scope} [scope]
 */

/**
 * `toast`: a transient note (not kept in the journal).
 * @typedef {object} ToastArgs
 * @property {'info' | 'success' | 'warning' | 'error'} [level]
 * @property {string} [text]
 */

/**
 * `clear`: empties a scope, or the whole view (and its journal).
 * @typedef {object} ClearArgs
 * @property {Scope} [scope]
 */

/**
 * `error`: a banner.
 * @typedef {object} ErrorArgs
 * @property {string} [code]
 * @property {string} [message]
 * @property {Scope} [scope]
 */

/**
 * What the view keeps in storage to redraw itself after a reload.
 * @typedef {object} Journal
 * @property {string} session
 * @property {Array<{name: string, args: CommandArgs}>} entries
 * @property {Record<string, string>} answers   request -> the answer as shown
 */

const MAX_JOURNAL_ENTRIES = 500;
const MAX_JOURNAL_CHARS = 1000000;
/** @type {Record<string, number>} */
const TOAST_MS = { info: 4000, success: 4000, warning: 7000 }; // errors stay until clicked
const INPUT_KINDS = /** @type {const} */ (['text', 'password', 'number', 'select', 'checkbox']);
const OUTPUT_KINDS = /** @type {const} */ (['text', 'markdown', 'json', 'table']);
const TOAST_LEVELS = /** @type {const} */ (['info', 'success', 'warning', 'error']);
let uid = 0;

// ---- DOM helpers --------------------------------------------------------------------

/**
 * @template {keyof HTMLElementTagNameMap} K
 * @param {K} tag
 * @param {string | null} [className]
 * @param {unknown} [text]
 * @returns {HTMLElementTagNameMap[K]}
 */
function el(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text !== undefined && text !== null) node.textContent = String(text);
  return node;
}

/** @param {Node} node */
function empty(node) {
  while (node.firstChild) node.removeChild(node.firstChild);
}

// Disable the fieldset and, explicitly, each control (so `control.disabled` tells the truth too).
/** @typedef {HTMLInputElement | HTMLSelectElement | HTMLButtonElement | HTMLFieldSetElement} Control */

/**
 * The elements under `parent` that match `selector`, a selector of form controls only.
 * @param {ParentNode} parent
 * @param {string} selector
 * @returns {NodeListOf<Control>}
 */
function controls(parent, selector) {
  return parent.querySelectorAll(selector);
}

/**
 * @param {HTMLFieldSetElement} fieldset
 * @param {boolean} on
 */
function setDisabled(fieldset, on) {
  fieldset.disabled = on;
  controls(fieldset, 'input, select, button').forEach((c) => { c.disabled = on; });
}

/**
 * @template {string} T
 * @param {readonly T[]} allowed
 * @param {unknown} value
 * @returns {value is T}
 */
function oneOf(allowed, value) {
  return allowed.includes(/** @type {T} */ (value));
}

/**
 * @param {unknown} value
 * @returns {value is Choice}
 */
function isChoice(value) {
  return value !== null && typeof value === 'object';
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function cellText(value) {
  if (value === undefined || value === null) return '';
  return typeof value === 'object' ? JSON.stringify(value) : String(value);
}

/**
 * @param {unknown} value
 * @returns {string}
 */
function prettyJson(value) {
  try {
    const text = JSON.stringify(value, null, 2);
    return text === undefined ? String(value) : text;
  } catch {
    return String(value);
  }
}

// ---- markdown: a tiny, safe subset --------------------------------------------------
// Blocks: paragraphs (single newlines become <br>), # headings, - and 1. lists, ``` fences.
// Inline: `code`, **bold**, *italic*, [text](http(s) url). Everything else is text.

const INLINE = /`([^`\n]+)`|\*\*(.+?)\*\*|\*([^*\s](?:[^*\n]*[^*\s])?)\*|\[([^\]\n]+)\]\(([^()\s]+)\)/g;

/**
 * @param {string} url
 * @returns {string | null}
 */
function safeHref(url) {
  try {
    const parsed = new URL(url); // no base: relative and scheme-less links stay text
    return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
  } catch {
    return null;
  }
}

/**
 * @param {string} text
 * @param {Node} parent
 */
function renderInline(text, parent) {
  const re = new RegExp(INLINE.source, 'g');
  let last = 0;
  let m;
  while ((m = re.exec(text))) {
    if (m.index > last) parent.appendChild(document.createTextNode(text.slice(last, m.index)));
    last = re.lastIndex;
    if (m[1] !== undefined) {
      parent.appendChild(el('code', null, m[1]));
    } else if (m[2] !== undefined) {
      renderInline(m[2], parent.appendChild(el('strong')));
    } else if (m[3] !== undefined) {
      renderInline(m[3], parent.appendChild(el('em')));
    } else {
      const href = safeHref(m[5]);
      if (!href) {
        parent.appendChild(document.createTextNode(m[0]));
        continue;
      }
      const a = el('a');
      a.href = href;
      a.rel = 'noopener noreferrer nofollow';
      a.target = '_blank';
      renderInline(m[4], a);
      parent.appendChild(a);
    }
  }
  if (last < text.length) parent.appendChild(document.createTextNode(text.slice(last)));
}

/**
 * Appends `source`, markdown of the subset above, to `parent`.
 * @param {string} source
 * @param {Node} parent
 */
export function renderMarkdown(source, parent) {
  const lines = String(source).replace(/\r\n?/g, '\n').split('\n');
  /** @type {string[]} */
  let para = [];
  /** @type {HTMLUListElement | HTMLOListElement | null} */
  let list = null;

  const flush = () => {
    if (para.length) {
      const p = parent.appendChild(el('p'));
      para.forEach((line, i) => {
        if (i) p.appendChild(el('br'));
        renderInline(line, p);
      });
    }
    para = [];
    list = null;
  };

  for (let i = 0; i < lines.length; i++) {
    const line = lines[i];
    let m;
    if (/^```/.test(line)) {
      flush();
      const code = [];
      while (++i < lines.length && !/^```/.test(lines[i])) code.push(lines[i]);
      parent.appendChild(el('pre')).appendChild(el('code', null, code.join('\n')));
    } else if (!line.trim()) {
      flush();
    } else if ((m = /^(#{1,6})\s+(.*)$/.exec(line))) {
      flush();
      const level = /** @type {'h3' | 'h4' | 'h5' | 'h6'} */ ('h' + Math.min(6, m[1].length + 2));
      renderInline(m[2], parent.appendChild(el(level)));
    } else if ((m = /^\s*(?:([-*+])|\d+[.)])\s+(.*)$/.exec(line))) {
      const tag = m[1] ? 'ul' : 'ol';
      if (para.length || !list || list.tagName.toLowerCase() !== tag) {
        flush();
        list = parent.appendChild(el(tag));
      }
      renderInline(m[2], list.appendChild(el('li')));
    } else {
      if (list) flush();
      para.push(line);
    }
  }
  flush();
}

// ---- tables -------------------------------------------------------------------------

/**
 * @param {OutputArgs} args
 * @param {Node} parent
 */
function renderTable(args, parent) {
  /** @type {unknown[]} */
  const rows = Array.isArray(args.content) ? args.content : [];
  /**
   * @param {unknown} r
   * @returns {r is Record<string, unknown>}
   */
  const isObject = (r) => r !== null && typeof r === 'object' && !Array.isArray(r);
  let header = Array.isArray(args.header) ? args.header : null;
  /** @type {unknown[][]} */
  let body;
  if (rows.length && rows.every(isObject)) {
    /** @type {string[]} */
    const keys = [];
    rows.forEach((r) => Object.keys(r).forEach((k) => { if (!keys.includes(k)) keys.push(k); }));
    header = keys;
    body = rows.map((r) => keys.map((k) => r[k]));
  } else {
    body = rows.map((r) => (Array.isArray(r) ? r : [r]));
  }
  const table = el('table');
  if (header) {
    const tr = table.appendChild(el('thead')).appendChild(el('tr'));
    header.forEach((h) => { tr.appendChild(el('th', null, cellText(h))).scope = 'col'; });
  }
  const tbody = table.appendChild(el('tbody'));
  body.forEach((r) => {
    const tr = tbody.appendChild(el('tr'));
    r.forEach((v) => tr.appendChild(el('td', null, cellText(v))));
  });
  parent.appendChild(el('div', 'gw-table-wrap')).appendChild(table);
}

// ---- toasts -------------------------------------------------------------------------

/** @returns {HTMLElement} */
function toastArea() {
  /** @type {HTMLElement | null} */
  let area = document.querySelector('.gw-toasts');
  if (!area) {
    area = el('div', 'gw-toasts');
    area.setAttribute('aria-live', 'polite');
    document.body.appendChild(area);
  }
  return area;
}

/** @param {ToastArgs} args */
function showToast(args) {
  const level = oneOf(TOAST_LEVELS, args.level) ? args.level : 'info';
  const toast = el('div', 'gw-toast', args.text);
  toast.dataset.level = level;
  toast.setAttribute('role', level === 'error' ? 'alert' : 'status');
  toast.title = 'Click to dismiss';
  const remove = () => toast.remove();
  toast.addEventListener('click', remove);
  if (TOAST_MS[level]) setTimeout(remove, TOAST_MS[level]);
  toastArea().appendChild(toast);
}

// ---- the view -----------------------------------------------------------------------

/**
 * How each built-in command is drawn: the vocabulary of DESIGN.md, written only here.
 * `restoring` is true when the view is redrawn from its journal after a reload.
 * @type {ReadonlyMap<string, (view: View, args: CommandArgs, restoring: boolean) => void>}
 */
const BUILT_IN = new Map([
  ['output', (view, args) => view.output(args)],
  ['input', (view, args, restoring) => view.input(args, restoring)],
  ['buttons', (view, args) => view.buttons(args)],
  ['progress', (view, args) => view.progress(args)],
  ['toast', (_view, args, restoring) => { if (!restoring) showToast(args); }],
  ['clear', (view, args) => view.clear(args)],
  ['error', (view, args) => view.error(args)],
]);

/** The names of the built-in commands; attach() handles each of them. */
export const COMMAND_NAMES = Object.freeze(Array.from(BUILT_IN.keys()));

export class View {
  /**
   * @param {Client} client
   * @param {HTMLElement} root
   */
  constructor(client, root) {
    this.client = client;
    this.root = root;
    this.key = client.storageKey + ':view';
    /** @type {Journal | null} */
    this.journal = null; // {session, entries: [{name, args}], answers: {request: shown text}}
  }

  /**
   * Scoped outputs go to a container [data-scope=NAME] directly inside root, made on demand.
   * @overload
   * @param {Scope | undefined} scope
   * @returns {HTMLElement}
   */
  /**
   * @overload
   * @param {Scope | undefined} scope
   * @param {false} create
   * @returns {HTMLElement | null}
   */
  /**
   * @param {Scope | undefined} scope
   * @param {boolean} [create]
   * @returns {HTMLElement | null}
   */
  container(scope, create) {
    if (scope === undefined || scope === null || scope === '') return this.root;
    const name = String(scope);
    for (const child of this.root.children) {
      if (child instanceof HTMLElement && child.classList.contains('gw-scope') && child.dataset.scope === name) return child;
    }
    if (create === false) return null;
    const box = el('div', 'gw-scope');
    box.dataset.scope = name;
    return this.root.appendChild(box);
  }

  /**
   * Draw one command: a built-in one, or any other name as its JSON.
   * @param {string} name
   * @param {CommandArgs} args
   * @param {boolean} restoring
   */
  render(name, args, restoring) {
    const draw = BUILT_IN.get(name);
    if (draw) draw(this, args, restoring);
    else this.unknown(name, args);
  }

  /** @param {OutputArgs} args */
  output(args) {
    const kind = oneOf(OUTPUT_KINDS, args.kind) ? args.kind : 'json';
    const node = el('div', 'gw-output');
    node.dataset.kind = kind;
    if (kind === 'text') node.textContent = cellText(args.content);
    else if (kind === 'markdown') renderMarkdown(cellText(args.content), node);
    else if (kind === 'table') renderTable(args, node);
    else node.appendChild(el('pre', null, prettyJson(args.content)));
    this.container(args.scope).appendChild(node);
  }

  /**
   * @param {InputArgs} args
   * @param {boolean} restoring
   */
  input(args, restoring) {
    const kind = oneOf(INPUT_KINDS, args.kind) ? args.kind : 'text';
    const request = args.request;
    const form = el('form', 'gw-input');
    form.dataset.request = String(request);
    form.dataset.kind = kind;
    const fieldset = form.appendChild(el('fieldset'));
    const id = 'gw-input-' + ++uid;
    const label = el('label', null, args.label || (kind === 'checkbox' ? 'Yes' : 'Your answer'));
    label.htmlFor = id;

    /** @type {HTMLInputElement | HTMLSelectElement} */
    let control;
    /** @type {() => unknown} the answer */
    let value;
    /** @type {(v: unknown) => string} the answer as shown */
    let shown;
    if (kind === 'select') {
      const select = el('select');
      const options = (Array.isArray(args.options) ? args.options : []).map((o) =>
        isChoice(o)
          ? { label: cellText(o.label !== undefined ? o.label : o.value), value: o.value }
          : { label: cellText(o), value: o });
      options.forEach((o, i) => {
        const option = select.appendChild(el('option', null, o.label));
        option.value = String(i); // index: option values may be numbers, objects...
        if (args.value !== undefined && JSON.stringify(o.value) === JSON.stringify(args.value)) option.selected = true;
      });
      value = () => (select.selectedIndex >= 0 ? options[select.selectedIndex].value : null);
      shown = () => (select.selectedIndex >= 0 ? options[select.selectedIndex].label : '');
      control = select;
    } else {
      const box = el('input');
      box.type = kind;
      if (kind === 'checkbox') box.checked = Boolean(args.value);
      else if (args.value !== undefined && args.value !== null) box.value = String(args.value);
      if (args.placeholder && kind !== 'checkbox') box.placeholder = String(args.placeholder);
      if (kind === 'number') {
        box.step = 'any';
        box.required = true; // an empty box is not a number
      }
      value = () => {
        if (kind === 'number') return Number(box.value);
        if (kind === 'checkbox') return box.checked;
        return box.value;
      };
      shown = (v) => {
        if (kind === 'password') return '••••••';
        if (kind === 'checkbox') return v ? 'Yes' : 'No';
        return String(v);
      };
      control = box;
    }
    control.name = 'value';
    control.id = id;

    const row = fieldset.appendChild(el('div', 'gw-input-row'));
    if (kind === 'checkbox') {
      const check = row.appendChild(el('div', 'gw-check'));
      check.appendChild(control);
      check.appendChild(label);
    } else {
      fieldset.insertBefore(label, row);
      row.appendChild(control);
    }
    const submit = row.appendChild(el('button', 'gw-button gw-primary', args.submit || 'Send'));
    submit.type = 'submit';
    const answer = form.appendChild(el('div', 'gw-answer'));
    const problem = form.appendChild(el('div', 'gw-field-error'));
    problem.setAttribute('role', 'alert');

    form.addEventListener('submit', (e) => {
      e.preventDefault();
      if (fieldset.disabled) return;
      const v = value();
      if (kind === 'number' && !Number.isFinite(v)) {
        problem.textContent = 'Please enter a number.';
        return;
      }
      this.answer(form, fieldset, answer, problem, request, shown(v));
      this.client.send('input.reply', { request: request, value: v })
        .catch((err) => this.unanswer(form, fieldset, answer, problem, request, err, control));
    });

    const previous = this.answers()[String(request)];
    this.container(args.scope).appendChild(form);
    if (previous !== undefined) this.answer(form, fieldset, answer, problem, request, previous, true);
    else if (!restoring && this.mayFocus()) control.focus();
  }

  /** @param {ButtonsArgs} args */
  buttons(args) {
    const request = args.request;
    const box = el('div', 'gw-buttons');
    box.dataset.request = String(request);
    if (args.label) box.appendChild(el('div', 'gw-buttons-label', args.label));
    const row = box.appendChild(el('div', 'gw-buttons-row'));
    const problem = el('div', 'gw-field-error');
    problem.setAttribute('role', 'alert');
    const list = Array.isArray(args.buttons) ? args.buttons : [];
    const disable = (/** @type {boolean} */ on) => row.querySelectorAll('button').forEach((b) => { b.disabled = on; });

    list.forEach((spec, i) => {
      const b = isChoice(spec) ? spec : { label: spec, value: spec };
      const text = cellText(b.label !== undefined ? b.label : b.value);
      const button = row.appendChild(el('button', i === 0 ? 'gw-button gw-primary' : 'gw-button', text));
      button.type = 'button';
      button.addEventListener('click', () => {
        disable(true);
        button.setAttribute('aria-pressed', 'true');
        box.classList.add('gw-answered');
        problem.textContent = '';
        this.remember(request, text);
        this.client.send('buttons.reply', { request: request, value: b.value === undefined ? text : b.value })
          .catch((/** @type {GatewayError} */ err) => {
            this.remember(request, undefined);
            problem.textContent = err.message;
            if (err.code === 'session_closed') return;
            disable(false);
            button.removeAttribute('aria-pressed');
            box.classList.remove('gw-answered');
          });
      });
    });
    box.appendChild(problem);
    this.container(args.scope).appendChild(box);

    const previous = this.answers()[String(request)];
    if (previous !== undefined) {
      disable(true);
      box.classList.add('gw-answered');
      row.querySelectorAll('button').forEach((b) => { if (b.textContent === previous) b.setAttribute('aria-pressed', 'true'); });
    }
  }

  // Focus a new input unless the person is busy elsewhere: answering an earlier
  // question, or typing into some other text box.
  mayFocus() {
    const active = document.activeElement;
    if (!active || active === document.body) return true;
    if (this.root.contains(active)) return !active.closest('form.gw-input:not(.gw-answered)');
    return !(/^(INPUT|TEXTAREA)$/.test(active.tagName) && /** @type {HTMLInputElement | HTMLTextAreaElement} */ (active).value);
  }

  /** @param {ProgressArgs} args */
  progress(args) {
    const id = cellText(args.id);
    /** @type {HTMLElement | null} */
    let box = null;
    for (const node of this.root.querySelectorAll('.gw-progress')) {
      if (node instanceof HTMLElement && node.dataset.id === id) { box = node; break; }
    }
    if (!box) {
      box = el('div', 'gw-progress');
      box.dataset.id = id;
      const head = box.appendChild(el('div', 'gw-progress-head'));
      head.appendChild(el('span', 'gw-progress-label'));
      head.appendChild(el('span', 'gw-progress-percent'));
      box.appendChild(el('progress'));
      this.container(args.scope).appendChild(box);
    }
    const bar = /** @type {HTMLProgressElement} */ (box.querySelector('progress'));
    const label = /** @type {HTMLElement} */ (box.querySelector('.gw-progress-label'));
    const percent = /** @type {HTMLElement} */ (box.querySelector('.gw-progress-percent'));
    const max = Number(args.max) > 0 ? Number(args.max) : 100;
    const value = Number(args.value);
    bar.max = max;
    if (args.value === undefined || args.value === null || !Number.isFinite(value)) {
      bar.removeAttribute('value'); // indeterminate
      percent.textContent = '';
    } else {
      bar.value = value;
      const pct = Math.max(0, Math.min(100, Math.round((100 * value) / max)));
      percent.textContent = pct + '%';
      box.dataset.done = String(pct >= 100);
    }
    if (args.label !== undefined) label.textContent = cellText(args.label);
    bar.setAttribute('aria-label', label.textContent || 'Progress');
  }

  /** @param {ClearArgs} args */
  clear(args) {
    const target = args.scope ? this.container(args.scope, false) : this.root;
    if (target) empty(target);
  }

  /** @param {ErrorArgs} args */
  error(args) {
    const banner = el('div', 'gw-error');
    banner.setAttribute('role', 'alert');
    if (args.code) banner.appendChild(el('span', 'gw-error-code', args.code));
    banner.appendChild(el('span', 'gw-error-message', args.message || 'Something went wrong.'));
    this.container(args.scope).appendChild(banner);
  }

  /**
   * @param {string} name
   * @param {CommandArgs} args
   */
  unknown(name, args) {
    let text;
    try { text = JSON.stringify(args); } catch { text = String(args); }
    this.root.appendChild(el('div', 'gw-unknown', name + ' ' + text));
  }

  // ---- answered state (shared by input and buttons) ----

  /**
   * @param {HTMLFormElement} form
   * @param {HTMLFieldSetElement} fieldset
   * @param {HTMLElement} answerEl
   * @param {HTMLElement} problem
   * @param {unknown} request
   * @param {string} text
   * @param {boolean} [restored]
   */
  answer(form, fieldset, answerEl, problem, request, text, restored) {
    setDisabled(fieldset, true);
    form.classList.add('gw-answered');
    answerEl.textContent = text;
    problem.textContent = '';
    if (!restored) this.remember(request, text);
  }

  /**
   * @param {HTMLFormElement} form
   * @param {HTMLFieldSetElement} fieldset
   * @param {HTMLElement} answerEl
   * @param {HTMLElement} problem
   * @param {unknown} request
   * @param {GatewayError} err
   * @param {HTMLElement} control
   */
  unanswer(form, fieldset, answerEl, problem, request, err, control) {
    this.remember(request, undefined);
    problem.textContent = err.message;
    if (err.code === 'session_closed') return; // nobody is waiting for it any more
    setDisabled(fieldset, false);
    form.classList.remove('gw-answered');
    answerEl.textContent = '';
    control.focus();
  }

  // ---- journal ----

  /** @returns {Record<string, string>} */
  answers() {
    return (this.journal && this.journal.answers) || {};
  }

  /**
   * @param {unknown} request
   * @param {string | undefined} text   undefined: forget the answer
   */
  remember(request, text) {
    const journal = this.current();
    if (!journal) return;
    if (text === undefined) delete journal.answers[String(request)];
    else journal.answers[String(request)] = text;
    this.save();
  }

  /**
   * The journal of the client's current session (a new one if the session changed).
   * @returns {Journal | null}
   */
  current() {
    const session = this.client.sessionId;
    if (!session) return null;
    if (!this.journal || this.journal.session !== session) {
      this.journal = { session: session, entries: [], answers: {} };
    }
    return this.journal;
  }

  /**
   * @param {string} name
   * @param {CommandArgs} args
   */
  record(name, args) {
    const journal = this.current();
    if (!journal) return;
    if (name === 'toast') return; // transient by nature
    if (name === 'clear' && !args.scope) {
      journal.entries = [];
      journal.answers = {};
    } else if (name === 'progress') {
      // Keep one entry per progress bar: its latest state, at its first position.
      const prev = journal.entries.find((e) => e.name === 'progress' && cellText(e.args.id) === cellText(args.id));
      if (prev) {
        prev.args = Object.assign({}, prev.args, args);
      } else {
        journal.entries.push({ name: name, args: args });
      }
    } else {
      journal.entries.push({ name: name, args: args });
    }
    if (journal.entries.length > MAX_JOURNAL_ENTRIES) journal.entries.splice(0, journal.entries.length - MAX_JOURNAL_ENTRIES);
    this.save();
  }

  save() {
    const storage = this.client.storage;
    const journal = this.journal;
    try {
      let text = JSON.stringify(journal);
      while (text.length > MAX_JOURNAL_CHARS && journal && journal.entries.length > 1) {
        journal.entries.splice(0, Math.ceil(journal.entries.length / 4));
        text = JSON.stringify(journal);
      }
      storage.setItem(this.key, text);
    } catch (err) {
      console.warn('gateway renderer: could not store the view', err);
    }
  }

  restore() {
    /** @type {Partial<Journal> | null} */
    let saved;
    try { saved = JSON.parse(this.client.storage.getItem(this.key) || 'null'); } catch { saved = null; }
    if (!saved || !saved.session || saved.session !== this.client.sessionId || !Array.isArray(saved.entries)) return;
    this.journal = { session: saved.session, entries: saved.entries, answers: saved.answers || {} };
    for (const entry of saved.entries) {
      try {
        this.render(entry.name, entry.args || {}, true);
      } catch (err) {
        console.warn('gateway renderer: could not restore', entry.name, err);
      }
    }
  }

  /**
   * A line about something the client could not do for the person (not in the journal:
   * it is about this page's connection, not the session's output).
   * @param {string} kind   lost, failed, warning or duplicate
   * @param {string} text
   */
  note(kind, text) {
    const node = el('div', 'gw-note', text);
    node.dataset.kind = kind;
    node.setAttribute('role', kind === 'duplicate' ? 'status' : 'alert');
    this.root.appendChild(node);
  }

  /**
   * The session these forms belong to is gone (closed, or replaced by a fresh one).
   * @param {boolean} divider   say so with a line under what was drawn
   */
  retire(divider) {
    let stale = false;
    this.root.querySelectorAll('form.gw-input:not(.gw-answered), .gw-buttons:not(.gw-answered)').forEach((node) => {
      node.classList.add('gw-stale');
      controls(node, 'fieldset, input, select, button').forEach((c) => { c.disabled = true; });
      stale = true;
    });
    if (divider && (stale || this.root.firstChild)) {
      this.root.appendChild(el('div', 'gw-divider', 'A new session started'));
    }
  }
}

/**
 * Draw the client's commands into `root`: the built-in ones, and any other name without
 * a handler of its own as its JSON. Redraws the journal of the session being resumed.
 * @param {Client} client
 * @param {HTMLElement | null} root
 * @returns {View}
 */
export function attach(client, root) {
  if (!root) throw new Error('GatewayRenderer.attach: no root element');
  const view = new View(client, root);
  /**
   * @param {string | null} name   null: the command's own name
   * @returns {CommandHandler}
   */
  const handle = (name) => (args, command) => {
    const a = args && typeof args === 'object' ? args : {};
    view.render(name || command.name, a, false);
    view.record(name || command.name, a);
  };
  COMMAND_NAMES.forEach((name) => client.on(name, handle(name)));
  client.on('*', handle(null));

  view.restore();
  client.onStatus((status, detail) => {
    const info = detail || {};
    // Nothing the person sent may vanish without being shown.
    if (info.lost && info.lost.length) view.note('lost', lostText(info.lost, status));
    if (info.failed && info.failed.length) view.note('failed', failedText(info.failed));
    if (info.warning) view.note('warning', info.warning);
    if (info.duplicate) view.note('duplicate', 'This tab is a copy of another open tab, so it started a session of its own.');
    if (info.again) return; // the same status told again, with news
    if (status === 'expired' || info.duplicate) view.retire(true);
    if (status === 'closed') view.retire(false);
    if (status === 'connected' || status === 'expired') view.current(); // start this session's journal
  });
  return view;
}

/**
 * "echo ×2, input.reply": the names of some events, each once with its count.
 * @param {EventReport[]} events
 * @returns {string}
 */
function eventNames(events) {
  /** @type {Map<string, number>} */
  const counts = new Map();
  events.forEach((e) => counts.set(e.name, (counts.get(e.name) || 0) + 1));
  return Array.from(counts, ([name, n]) => (n > 1 ? name + ' ×' + n : name)).join(', ');
}

/**
 * @param {EventReport[]} lost
 * @param {Status} status
 * @returns {string}
 */
export function lostText(lost, status) {
  const n = lost.length;
  const when = status === 'closed' ? 'before the session ended' : 'before the reconnect';
  return (n === 1 ? '1 action' : n + ' actions') + ' you took ' + when + (n === 1 ? ' was' : ' were') +
    ' not delivered, or not confirmed: ' + eventNames(lost) + '.';
}

/**
 * @param {EventReport[]} failed
 * @returns {string}
 */
function failedText(failed) {
  const codes = Array.from(new Set(failed.map((e) => e.code || 'error'))).join(', ');
  return (failed.length === 1 ? '1 action' : failed.length + ' actions') + ' you took before the reload ' +
    (failed.length === 1 ? 'was' : 'were') + ' refused (' + codes + '): ' + eventNames(failed) + '.';
}

// ---- connection status pill ---------------------------------------------------------

/** @type {Partial<Record<Status, string>>} */
const STATUS_TEXT = {
  idle: 'Not connected',
  connecting: 'Connecting…',
  connected: 'Connected',
  reconnecting: 'Reconnecting…',
  resumed: 'Reconnected — nothing was lost',
  expired: 'Session expired — started a new one',
};

/**
 * Show the client's status in `element` (a pill), with a login link or a retry button
 * when there is something to do.
 * @param {Client} client
 * @param {HTMLElement} element
 * @param {{loginUrl?: string}} [options]
 */
export function attachStatus(client, element, options) {
  const loginUrl = (options && options.loginUrl) || '/login';
  element.classList.add('gw-status');
  element.setAttribute('role', 'status');
  element.setAttribute('aria-live', 'polite');

  /** @type {StatusListener} */
  const render = (status, detail) => {
    const info = detail || {};
    element.dataset.state = status;
    empty(element);
    element.appendChild(el('span', 'gw-status-dot')).setAttribute('aria-hidden', 'true');
    const text = element.appendChild(el('span', 'gw-status-text'));
    element.title = info.reason ? 'Reason: ' + info.reason : '';
    if (status === 'closed') {
      text.textContent = 'Session ended: ' + (info.message || info.reason || 'closed');
    } else if (status === 'unauthorized') {
      text.textContent = 'Signed out — ';
      const link = text.appendChild(el('a', null, 'Log in'));
      const here = window.location.pathname + window.location.search;
      link.href = loginUrl + (loginUrl.includes('?') ? '&' : '?') + 'next=' + encodeURIComponent(here);
    } else if (status === 'error') {
      text.textContent = 'Not connected: ' + (info.message || info.code || 'error') + ' ';
      const retry = element.appendChild(el('button', 'gw-status-retry', 'Retry'));
      retry.type = 'button';
      retry.addEventListener('click', () => client.connect());
    } else {
      text.textContent = STATUS_TEXT[status] || status;
    }
  };
  render(client.status, client.statusDetail);
  client.onStatus(render);
}

/**
 * @typedef {object} ComposerOptions
 * @property {(text: string) => unknown} onSend   may return a Promise; on failure the text is given back
 * @property {HTMLElement} [row]      where the box and button go (default: the form)
 * @property {string} [id]            of the text box
 * @property {string} [placeholder]
 * @property {string} [ariaLabel]
 */

/**
 * A text box and Send button for demo pages, built into `form`: calls onSend(text) on
 * submit (a Promise; on failure the text is given back), and disables itself once the
 * session is over. Returns {input, button}.
 * @param {Client} client
 * @param {HTMLFormElement} form
 * @param {ComposerOptions} options
 * @returns {{input: HTMLInputElement, button: HTMLButtonElement}}
 */
export function composer(client, form, options) {
  const opts = options || {};
  const row = opts.row || form;
  const input = row.appendChild(document.createElement('input'));
  if (opts.id) input.id = opts.id;
  input.name = 'text';
  input.type = 'text';
  input.placeholder = opts.placeholder || '';
  if (opts.ariaLabel) input.setAttribute('aria-label', opts.ariaLabel);
  input.maxLength = 2000;
  input.required = true;
  const button = row.appendChild(document.createElement('button'));
  button.type = 'submit';
  button.className = 'gw-button gw-primary';
  button.textContent = 'Send';

  form.addEventListener('submit', (e) => {
    e.preventDefault();
    const text = input.value;
    if (!text.trim()) return;
    input.value = '';
    input.focus();
    Promise.resolve(opts.onSend(text)).catch(() => {
      if (!input.value) input.value = text; // give the text back so it can be retried
    });
  });
  // Once the session is over, the box can no longer be answered.
  client.onStatus((status) => {
    const over = status === 'closed' || status === 'unauthorized';
    input.disabled = over;
    button.disabled = over;
  });
  return { input: input, button: button };
}

