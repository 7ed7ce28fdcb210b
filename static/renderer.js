/*
 * renderer.js - default renderer of the built-in command vocabulary (DESIGN.md,
 * "Built-in command vocabulary"), on top of gateway.js.
 *
 *   const view = GatewayRenderer.attach(client, document.getElementById('gw-output'));
 *   GatewayRenderer.attachStatus(client, document.getElementById('gw-status'));
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
(function (global) {
  'use strict';

  const doc = global.document;
  const MAX_JOURNAL_ENTRIES = 500;
  const MAX_JOURNAL_CHARS = 1000000;
  const TOAST_MS = { info: 4000, success: 4000, warning: 7000 }; // errors stay until clicked
  const INPUT_KINDS = ['text', 'password', 'number', 'select', 'checkbox'];
  let uid = 0;

  // ---- DOM helpers --------------------------------------------------------------------

  function el(tag, className, text) {
    const node = doc.createElement(tag);
    if (className) node.className = className;
    if (text !== undefined && text !== null) node.textContent = String(text);
    return node;
  }

  function empty(node) {
    while (node.firstChild) node.removeChild(node.firstChild);
  }

  // Disable the fieldset and, explicitly, each control (so `control.disabled` tells the truth too).
  function setDisabled(fieldset, on) {
    fieldset.disabled = on;
    fieldset.querySelectorAll('input, select, button').forEach((c) => { c.disabled = on; });
  }

  function cellText(value) {
    if (value === undefined || value === null) return '';
    return typeof value === 'object' ? JSON.stringify(value) : String(value);
  }

  function prettyJson(value) {
    try {
      const text = JSON.stringify(value, null, 2);
      return text === undefined ? String(value) : text;
    } catch (err) {
      return String(value);
    }
  }

  // ---- markdown: a tiny, safe subset --------------------------------------------------
  // Blocks: paragraphs (single newlines become <br>), # headings, - and 1. lists, ``` fences.
  // Inline: `code`, **bold**, *italic*, [text](http(s) url). Everything else is text.

  const INLINE = /`([^`\n]+)`|\*\*(.+?)\*\*|\*([^*\s](?:[^*\n]*[^*\s])?)\*|\[([^\]\n]+)\]\(([^()\s]+)\)/g;

  function safeHref(url) {
    try {
      const parsed = new URL(url); // no base: relative and scheme-less links stay text
      return parsed.protocol === 'http:' || parsed.protocol === 'https:' ? parsed.href : null;
    } catch (err) {
      return null;
    }
  }

  function renderInline(text, parent) {
    const re = new RegExp(INLINE.source, 'g');
    let last = 0;
    let m;
    while ((m = re.exec(text))) {
      if (m.index > last) parent.appendChild(doc.createTextNode(text.slice(last, m.index)));
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
          parent.appendChild(doc.createTextNode(m[0]));
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
    if (last < text.length) parent.appendChild(doc.createTextNode(text.slice(last)));
  }

  function renderMarkdown(source, parent) {
    const lines = String(source).replace(/\r\n?/g, '\n').split('\n');
    let para = [];
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
        renderInline(m[2], parent.appendChild(el('h' + Math.min(6, m[1].length + 2))));
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

  function renderTable(args, parent) {
    const rows = Array.isArray(args.content) ? args.content : [];
    const isObject = (r) => r !== null && typeof r === 'object' && !Array.isArray(r);
    let header = Array.isArray(args.header) ? args.header : null;
    let body;
    if (rows.length && rows.every(isObject)) {
      header = [];
      rows.forEach((r) => Object.keys(r).forEach((k) => { if (!header.includes(k)) header.push(k); }));
      body = rows.map((r) => header.map((k) => r[k]));
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

  function toastArea() {
    let area = doc.querySelector('.gw-toasts');
    if (!area) {
      area = el('div', 'gw-toasts');
      area.setAttribute('aria-live', 'polite');
      doc.body.appendChild(area);
    }
    return area;
  }

  function showToast(args) {
    const level = ['info', 'success', 'warning', 'error'].includes(args.level) ? args.level : 'info';
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

  class View {
    constructor(client, root) {
      this.client = client;
      this.root = root;
      this.key = client.storageKey + ':view';
      this.journal = null; // {session, entries: [{name, args}], answers: {request: shown text}}
    }

    // Scoped outputs go to a container [data-scope=NAME] directly inside root, made on demand.
    container(scope, create) {
      if (scope === undefined || scope === null || scope === '') return this.root;
      const name = String(scope);
      for (const child of this.root.children) {
        if (child.classList.contains('gw-scope') && child.dataset.scope === name) return child;
      }
      if (create === false) return null;
      const box = el('div', 'gw-scope');
      box.dataset.scope = name;
      return this.root.appendChild(box);
    }

    render(name, args, restoring) {
      switch (name) {
        case 'output': return this.output(args);
        case 'input': return this.input(args, restoring);
        case 'buttons': return this.buttons(args, restoring);
        case 'progress': return this.progress(args);
        case 'toast': return restoring ? null : showToast(args);
        case 'clear': return this.clear(args);
        case 'error': return this.error(args);
        default: return this.unknown(name, args);
      }
    }

    output(args) {
      const kind = ['text', 'markdown', 'json', 'table'].includes(args.kind) ? args.kind : 'json';
      const node = el('div', 'gw-output');
      node.dataset.kind = kind;
      if (kind === 'text') node.textContent = cellText(args.content);
      else if (kind === 'markdown') renderMarkdown(cellText(args.content), node);
      else if (kind === 'table') renderTable(args, node);
      else node.appendChild(el('pre', null, prettyJson(args.content)));
      this.container(args.scope).appendChild(node);
    }

    input(args, restoring) {
      const kind = INPUT_KINDS.includes(args.kind) ? args.kind : 'text';
      const request = args.request;
      const form = el('form', 'gw-input');
      form.dataset.request = String(request);
      form.dataset.kind = kind;
      const fieldset = form.appendChild(el('fieldset'));
      const id = 'gw-input-' + ++uid;
      const label = el('label', null, args.label || (kind === 'checkbox' ? 'Yes' : 'Your answer'));
      label.htmlFor = id;

      let control;
      let options = [];
      if (kind === 'select') {
        control = el('select');
        options = (Array.isArray(args.options) ? args.options : []).map((o) =>
          o !== null && typeof o === 'object'
            ? { label: cellText(o.label !== undefined ? o.label : o.value), value: o.value }
            : { label: cellText(o), value: o });
        options.forEach((o, i) => {
          const option = control.appendChild(el('option', null, o.label));
          option.value = String(i); // index: option values may be numbers, objects...
          if (args.value !== undefined && JSON.stringify(o.value) === JSON.stringify(args.value)) option.selected = true;
        });
      } else {
        control = el('input');
        control.type = kind;
        if (kind === 'checkbox') control.checked = Boolean(args.value);
        else if (args.value !== undefined && args.value !== null) control.value = String(args.value);
        if (args.placeholder && kind !== 'checkbox') control.placeholder = String(args.placeholder);
        if (kind === 'number') {
          control.step = 'any';
          control.required = true; // an empty box is not a number
        }
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

      const value = () => {
        if (kind === 'number') return Number(control.value);
        if (kind === 'checkbox') return control.checked;
        if (kind === 'select') return control.selectedIndex >= 0 ? options[control.selectedIndex].value : null;
        return control.value;
      };
      const shown = (v) => {
        if (kind === 'password') return '••••••';
        if (kind === 'checkbox') return v ? 'Yes' : 'No';
        if (kind === 'select') return control.selectedIndex >= 0 ? options[control.selectedIndex].label : '';
        return String(v);
      };

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

    buttons(args, restoring) {
      const request = args.request;
      const box = el('div', 'gw-buttons');
      box.dataset.request = String(request);
      if (args.label) box.appendChild(el('div', 'gw-buttons-label', args.label));
      const row = box.appendChild(el('div', 'gw-buttons-row'));
      const problem = el('div', 'gw-field-error');
      problem.setAttribute('role', 'alert');
      const list = Array.isArray(args.buttons) ? args.buttons : [];
      const disable = (on) => row.querySelectorAll('button').forEach((b) => { b.disabled = on; });

      list.forEach((spec, i) => {
        const b = spec !== null && typeof spec === 'object' ? spec : { label: spec, value: spec };
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
            .catch((err) => {
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
      const active = doc.activeElement;
      if (!active || active === doc.body) return true;
      if (this.root.contains(active)) return !active.closest('form.gw-input:not(.gw-answered)');
      return !(/^(INPUT|TEXTAREA)$/.test(active.tagName) && active.value);
    }

    progress(args) {
      const id = cellText(args.id);
      let box = null;
      for (const node of this.root.querySelectorAll('.gw-progress')) {
        if (node.dataset.id === id) { box = node; break; }
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
      const bar = box.querySelector('progress');
      const max = Number(args.max) > 0 ? Number(args.max) : 100;
      const value = Number(args.value);
      bar.max = max;
      if (args.value === undefined || args.value === null || !Number.isFinite(value)) {
        bar.removeAttribute('value'); // indeterminate
        box.querySelector('.gw-progress-percent').textContent = '';
      } else {
        bar.value = value;
        const pct = Math.max(0, Math.min(100, Math.round((100 * value) / max)));
        box.querySelector('.gw-progress-percent').textContent = pct + '%';
        box.dataset.done = String(pct >= 100);
      }
      if (args.label !== undefined) box.querySelector('.gw-progress-label').textContent = cellText(args.label);
      bar.setAttribute('aria-label', box.querySelector('.gw-progress-label').textContent || 'Progress');
    }

    clear(args) {
      const target = args.scope ? this.container(args.scope, false) : this.root;
      if (target) empty(target);
    }

    error(args) {
      const banner = el('div', 'gw-error');
      banner.setAttribute('role', 'alert');
      if (args.code) banner.appendChild(el('span', 'gw-error-code', args.code));
      banner.appendChild(el('span', 'gw-error-message', args.message || 'Something went wrong.'));
      this.container(args.scope).appendChild(banner);
    }

    unknown(name, args) {
      let text;
      try { text = JSON.stringify(args); } catch (err) { text = String(args); }
      this.root.appendChild(el('div', 'gw-unknown', name + ' ' + text));
    }

    // ---- answered state (shared by input and buttons) ----

    answer(form, fieldset, answerEl, problem, request, text, restored) {
      setDisabled(fieldset, true);
      form.classList.add('gw-answered');
      answerEl.textContent = text;
      problem.textContent = '';
      if (!restored) this.remember(request, text);
    }

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

    answers() {
      return (this.journal && this.journal.answers) || {};
    }

    remember(request, text) {
      if (!this.current()) return;
      if (text === undefined) delete this.journal.answers[String(request)];
      else this.journal.answers[String(request)] = text;
      this.save();
    }

    // The journal of the client's current session (a new one if the session changed).
    current() {
      const session = this.client.sessionId;
      if (!session) return null;
      if (!this.journal || this.journal.session !== session) {
        this.journal = { session: session, entries: [], answers: {} };
      }
      return this.journal;
    }

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
      try {
        let text = JSON.stringify(this.journal);
        while (text.length > MAX_JOURNAL_CHARS && this.journal.entries.length > 1) {
          this.journal.entries.splice(0, Math.ceil(this.journal.entries.length / 4));
          text = JSON.stringify(this.journal);
        }
        storage.setItem(this.key, text);
      } catch (err) {
        console.warn('gateway renderer: could not store the view', err);
      }
    }

    restore() {
      let saved = null;
      try { saved = JSON.parse(this.client.storage.getItem(this.key) || 'null'); } catch (err) { saved = null; }
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

    // The session these forms belong to is gone (closed, or replaced by a fresh one).
    retire(divider) {
      let stale = false;
      this.root.querySelectorAll('form.gw-input:not(.gw-answered), .gw-buttons:not(.gw-answered)').forEach((node) => {
        node.classList.add('gw-stale');
        node.querySelectorAll('fieldset, input, select, button').forEach((c) => { c.disabled = true; });
        stale = true;
      });
      if (divider && (stale || this.root.firstChild)) {
        this.root.appendChild(el('div', 'gw-divider', 'A new session started'));
      }
    }
  }

  function attach(client, root) {
    if (!root) throw new Error('GatewayRenderer.attach: no root element');
    const view = new View(client, root);
    const handle = (name) => (args, command) => {
      const a = args && typeof args === 'object' ? args : {};
      view.render(name || command.name, a, false);
      view.record(name || command.name, a);
    };
    ['output', 'input', 'buttons', 'progress', 'toast', 'clear', 'error'].forEach((name) => client.on(name, handle(name)));
    client.on('*', handle(null));

    view.restore();
    client.onStatus((status) => {
      if (status === 'expired') view.retire(true);
      if (status === 'closed') view.retire(false);
      if (status === 'connected' || status === 'expired') view.current(); // start this session's journal
    });
    return view;
  }

  // ---- connection status pill ---------------------------------------------------------

  const STATUS_TEXT = {
    idle: 'Not connected',
    connecting: 'Connecting…',
    connected: 'Connected',
    reconnecting: 'Reconnecting…',
    resumed: 'Reconnected — nothing was lost',
    expired: 'Session expired — started a new one',
  };

  function attachStatus(client, element, options) {
    const loginUrl = (options && options.loginUrl) || '/login';
    element.classList.add('gw-status');
    element.setAttribute('role', 'status');
    element.setAttribute('aria-live', 'polite');

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
        const here = global.location.pathname + global.location.search;
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
   * A text box and Send button for demo pages, built into `form`: calls onSend(text) on
   * submit (a Promise; on failure the text is given back), and disables itself once the
   * session is over. Returns {input, button}.
   */
  function composer(client, form, options) {
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

  global.GatewayRenderer = {
    attach: attach, attachStatus: attachStatus, renderMarkdown: renderMarkdown, composer: composer,
  };
})(window);
