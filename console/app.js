// The drum-splitter console: reads the admin API every 2 s, writes through it with the token.
// Plain browser JavaScript, no build step. The page's CSP allows only our own files: no inline
// script or style, no eval; everything here goes through textContent (reasons are free text).
'use strict';

(() => {
  const POLL_MS = 2000;
  const CHART_HEIGHT = 160;
  const TOKEN_KEY = 'drum-splitter.token';
  const ACTIVE = new Set(['running', 'awaiting_approval', 'reducing', 'paused']);

  const $ = (id) => document.getElementById(id);
  const css = getComputedStyle(document.documentElement);
  const COLOUR = {
    baseline: css.getPropertyValue('--baseline').trim(),
    canary: css.getPropertyValue('--canary').trim(),
    other: css.getPropertyValue('--other').trim(),
  };

  /** An element with attributes and children (strings become text, never HTML). */
  function el(tag, attrs, ...children) {
    const e = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs ?? {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k === 'class') e.className = v;
      else e.setAttribute(k, v === true ? '' : String(v));
    }
    e.append(...children.filter((c) => c !== undefined && c !== null));
    return e;
  }

  // ---- formatting -------------------------------------------------------------------------
  const dash = '—';
  const pct = (p) => (p === null || p === undefined ? dash : `${+Number(p).toFixed(2)}%`);
  const rate = (f) => (f === null || f === undefined ? dash : `${+(f * 100).toFixed(2)}%`);
  const ms = (s) => (s === null || s === undefined ? dash : `${(s * 1000).toFixed(s < 0.01 ? 2 : 1)} ms`);
  const rps = (r) => (r === null || r === undefined ? dash : r < 10 ? r.toFixed(1) : String(Math.round(r)));
  const mb = (b) => (b === null || b === undefined ? dash : `${Math.round(b / 2 ** 20)} MB`);
  const clock = (iso) => new Date(iso).toLocaleTimeString([], { hour12: false });
  const num = (v) => (v === null || v === undefined ? dash : typeof v === 'number' ? String(+v.toPrecision(4)) : String(v));
  function duration(msec) {
    if (msec < 1000) return `${Math.round(msec)} ms`;
    if (msec < 60_000) return `${+(msec / 1000).toFixed(1)} s`;
    if (msec < 3_600_000) return `${+(msec / 60_000).toFixed(1)} min`;
    return `${+(msec / 3_600_000).toFixed(1)} h`;
  }
  const until = (iso) => {
    const left = Date.parse(iso) - Date.now();
    return `${left > 0 ? `in ${duration(left)}` : 'now'} (${clock(iso)})`;
  };

  /** A table's rows, or one row saying there are none: bare headers read as a page that failed. */
  function fillTable(table, rows, none = 'none yet') {
    const columns = table.tHead.rows[0].cells.length;
    table.tBodies[0].replaceChildren(...(rows.length > 0 ? rows : [el('tr', { class: 'none' }, el('td', { colspan: columns, class: 'muted' }, none))]));
  }

  // ---- who is who -------------------------------------------------------------------------
  let baseline = null;
  let canary = null;
  const role = (name) => (name === baseline ? 'baseline' : name === canary ? 'canary' : 'other');

  // ---- the token: this tab only, sent as a Bearer header, never in a URL or cookie -----------
  let token = sessionStorage.getItem(TOKEN_KEY) ?? '';

  function showToken(note) {
    const on = token !== '';
    for (const f of document.querySelectorAll('fieldset.needs-token')) f.disabled = !on;
    $('read-only').hidden = on;
    $('token-state').textContent = note ?? (on ? 'token set for this tab' : 'read-only');
    $('forget-token').disabled = !on;
  }

  $('token-form').addEventListener('submit', (e) => {
    e.preventDefault();
    const typed = $('token').value.trim();
    $('token').value = '';
    if (typed === '') return showToken('type a token first');
    token = typed;
    sessionStorage.setItem(TOKEN_KEY, token);
    showToken('token set for this tab; the server checks it at the first change');
  });
  $('forget-token').addEventListener('click', () => {
    token = '';
    sessionStorage.removeItem(TOKEN_KEY);
    showToken('token forgotten: read-only');
    $('token').focus();
  });

  // ---- confirmation dialog ----------------------------------------------------------------
  const dialog = $('confirm');
  $('confirm-ok').addEventListener('click', () => dialog.close('ok'));
  $('confirm-cancel').addEventListener('click', () => dialog.close('cancel'));

  /** Resolves true when confirmed; Escape or Cancel is false. Focus goes back where it was. */
  function confirmDialog(title, text, okLabel) {
    return new Promise((resolve) => {
      const opener = document.activeElement;
      $('confirm-title').textContent = title;
      $('confirm-text').textContent = text;
      $('confirm-ok').textContent = okLabel;
      dialog.returnValue = '';
      dialog.addEventListener(
        'close',
        () => {
          resolve(dialog.returnValue === 'ok');
          if (opener instanceof HTMLElement) opener.focus();
        },
        { once: true },
      );
      dialog.showModal();
      $('confirm-ok').focus();
    });
  }

  // ---- writes -----------------------------------------------------------------------------
  /**
   * Sends a write with the reason typed in `reasonId`; shows what it did or the API's error in
   * `out`. Resolves to the JSON, or null. Once the server has answered, the reason is cleared: the
   * next action is not recorded with this one's.
   */
  async function write(method, path, body, out, said, reasonId) {
    out.className = 'result';
    out.textContent = `${method} ${path}…`;
    let answer = null;
    try {
      const res = await fetch(path, {
        method,
        cache: 'no-store',
        headers: { 'content-type': 'application/json', authorization: `Bearer ${token}` },
        body: JSON.stringify({ ...body, reason: reasonOf(reasonId) }),
      });
      // Kept after a refusal (a wrong token, a stale version), to send again; cleared once it is recorded.
      if (res.ok) $(reasonId).value = '';
      const json = await res.json().catch(() => ({}));
      if (res.status === 401) {
        out.className = 'result error';
        out.textContent = 'The token was refused (401): check it, or forget it and type it again.';
        showToken('token refused');
      } else if (!res.ok) {
        out.className = 'result error';
        // The API's message already names the field.
        out.textContent = `${res.status}: ${json.message ?? res.statusText}`;
      } else {
        out.className = 'result ok';
        out.textContent = said(json);
        answer = json;
      }
    } catch (err) {
      out.className = 'result error';
      out.textContent = `Not sent: ${err.message}`;
    }
    void poll();
    return answer;
  }

  const reasonOf = (id) => $(id).value.trim() || null;

  // ---- split ------------------------------------------------------------------------------
  let weights = null;
  /** The rollout's phase and its plan's first step, as last read: what Start's confirmation says. */
  let rolloutPhase = null;
  let firstStep = null;
  let firstStepText = '';
  const bars = new Map();
  let barsFor = '';
  let weightDirty = false;

  function renderWeights(w) {
    weights = w;
    // What the weights are applied to: nginx's murmur2 split_clients, or the seed's md5 % 100 (Option B).
    $('split-by').textContent = w.split ? `by ${w.split.key}, hash ${w.split.hash}` : '';
    const names = Object.keys(w.weights);
    // Built again only when the upstreams or who is baseline and canary change (their colours).
    const key = `${names.join(' ')}|${baseline}|${canary}`;
    if (key !== barsFor) {
      barsFor = key;
      $('bars').replaceChildren();
      bars.clear();
      for (const name of names) {
        const fill = el('div', { class: `fill bg-${role(name)}` });
        const value = el('span', { class: 'pct' });
        $('bars').append(el('div', { class: 'bar', 'data-upstream': name }, el('span', { class: `name c-${role(name)}` }, name), el('div', { class: 'track', 'aria-hidden': 'true' }, fill), value));
        bars.set(name, { fill, value });
      }
      const select = $('weight-upstream');
      select.replaceChildren(...names.filter((n) => n !== baseline).map((n) => el('option', { value: n, selected: n === canary }, n)));
      // A single upstream has nothing to shift.
      $('weight-form').hidden = select.options.length === 0;
    }
    for (const [name, p] of Object.entries(w.weights)) {
      const bar = bars.get(name);
      bar.fill.style.width = `${p}%`;
      bar.value.textContent = pct(p);
    }
    if (!weightDirty && document.activeElement !== $('weight-value')) $('weight-value').value = String(w.weights[$('weight-upstream').value] ?? '');
  }

  $('weight-value').addEventListener('input', () => (weightDirty = true));
  $('weight-upstream').addEventListener('change', () => {
    weightDirty = false;
    if (weights) $('weight-value').value = String(weights.weights[$('weight-upstream').value] ?? '');
  });

  $('weight-form').addEventListener('submit', async (e) => {
    e.preventDefault();
    if (!weights) return;
    const name = $('weight-upstream').value;
    const to = Number($('weight-value').value);
    const from = weights.weights[name];
    const rest = 100 - Object.entries(weights.weights).reduce((sum, [n, p]) => sum + (n === baseline ? 0 : n === name ? to : p), 0);
    const text = `${name} ${pct(from)} → ${pct(to)}` + (baseline ? `; ${baseline} takes the rest: ${pct(weights.weights[baseline])} → ${pct(rest)}` : '');
    if (!(await confirmDialog('Change the split', text, 'Set weight'))) return;
    // Conditional on the weights the dialog showed: if they moved since, the API answers 409.
    const done = await write('PUT', '/weights', { weights: { [name]: to }, version: weights.version }, $('weight-result'), (j) => `Done: ${name} is at ${pct(j.weights[name])} (version ${j.version}).`, 'weight-reason');
    if (done) weightDirty = false;
  });

  $('rollback').addEventListener('click', async () => {
    const text = `Every upstream but ${baseline ?? 'the baseline'} to 0% at once.`;
    if (!(await confirmDialog('Roll back now', text, 'Roll back'))) return;
    await write('POST', '/rollback', {}, $('weight-result'), (j) => `Rolled back: ${Object.entries(j.weights).map(([n, p]) => `${n} ${pct(p)}`).join(', ')}.`, 'weight-reason');
    weightDirty = false;
  });

  // ---- backends and charts ----------------------------------------------------------------
  const charts = [];

  /** The narrowest time span a chart shows: one point is a moment in a minute, not a year. */
  const MIN_SPAN_S = 60;
  /** The x axis's labels: a clock time, with seconds while the ticks are less than a minute apart. */
  const tickTime = (t, incr) => new Date(t * 1000).toLocaleTimeString([], { hour12: false, hour: '2-digit', minute: '2-digit', ...(incr < 60 ? { second: '2-digit' } : {}) });

  /** The time axis's range: at least a minute, up to the last point (uPlot widens a single point to a day after it). */
  function xRange(u, min, max) {
    const xs = u.data[0];
    if (xs.length === 1) return [xs[0] - MIN_SPAN_S, xs[0]];
    return max === null || max - min >= MIN_SPAN_S ? [min, max] : [max - MIN_SPAN_S, max];
  }

  /** One uPlot chart, its width following its box. */
  function chart(box, series, format) {
    const opts = {
      width: Math.max(box.clientWidth, 200),
      height: CHART_HEIGHT,
      series: [{}, ...series.map((s) => ({ label: s.label, stroke: s.colour, width: s.dash ? 1.5 : 2, dash: s.dash, spanGaps: false, value: (_u, v) => (v === null || v === undefined ? dash : format(v)) }))],
      scales: {
        x: { time: true, range: xRange },
        y: { range: (_u, _min, max) => [0, max === null || !(max > 0) ? 1 : max * 1.1] },
      },
      // One line per label, a label's width and more apart (uPlot's default packs "3:12am" and a date line 50 px apart).
      axes: [{ space: 60, values: (_u, ticks, _axis, _space, incr) => ticks.map((t) => tickTime(t, incr)) }, { size: 56 }],
    };
    const plot = new uPlot(opts, [[], ...series.map(() => [])], box);
    new ResizeObserver(() => {
      const width = Math.max(box.clientWidth, 200);
      if (width !== plot.width) plot.setSize({ width, height: CHART_HEIGHT });
    }).observe(box);
    return plot;
  }

  function makeCharts(names) {
    const side = (name) => ({ name, colour: COLOUR[role(name)] });
    const defs = [
      ['chart-rps', names.map((n) => ({ ...side(n), label: n, key: 'rps', scale: 1 })), (v) => rps(v)],
      ['chart-errors', names.map((n) => ({ ...side(n), label: n, key: 'errorRate', scale: 100 })), (v) => `${+v.toFixed(2)}%`],
      ['chart-latency', names.flatMap((n) => [
        { ...side(n), label: `${n} p50`, key: 'p50', scale: 1000, dash: [5, 4] },
        { ...side(n), label: `${n} p99`, key: 'p99', scale: 1000 },
      ]), (v) => `${v.toFixed(1)} ms`],
      ['chart-rss', names.map((n) => ({ ...side(n), label: n, key: 'rss', scale: 2 ** -20 })), (v) => `${Math.round(v)} MB`],
    ];
    for (const [id, series, format] of defs) {
      const box = $(id);
      box.replaceChildren();
      charts.push({ plot: chart(box, series, format), series });
    }
  }

  function renderSeries(s) {
    $('interval').textContent = duration(s.intervalMs);
    if (charts.length === 0) makeCharts(s.upstreams);
    const xs = s.samples.map((p) => Date.parse(p.at) / 1000);
    for (const { plot, series } of charts) {
      const ys = series.map(({ name, key, scale }) => s.samples.map((p) => {
        const v = p.upstreams[name]?.[key];
        return v === null || v === undefined ? null : v * scale;
      }));
      plot.setData([xs, ...ys]);
      // Not hovering: the legend shows the latest values.
      if (plot.cursor.idx === null || plot.cursor.idx === undefined) plot.setLegend({ idx: xs.length - 1 });
    }
    renderBackends(s);
  }

  /**
   * A column per upstream (headed in its colour), a row per measure: fits a third of a laptop and
   * a phone. The latencies name their window: the rollout's verdict has its own, longer one.
   */
  const MEASURES = [
    ['ping', () => '/ping'],
    ['rps', () => 'req/s', (p) => rps(p.rps)],
    ['errors', () => 'errors', (p) => rate(p.errorRate)],
    ['p50', (over) => `p50 (last ${over})`, (p) => ms(p.p50)],
    ['p99', (over) => `p99 (last ${over})`, (p) => ms(p.p99)],
    ['rss', () => 'DRUM RSS', (p) => mb(p.rss)],
  ];

  function renderBackends(s) {
    const table = $('backend-table');
    const head = el('tr', {}, el('td'), ...s.upstreams.map((name) =>
      el('th', { scope: 'col', class: `c-${role(name)}` }, name, role(name) === 'other' ? null : el('span', { class: 'muted' }, role(name)))));
    table.tHead.replaceChildren(head);
    const last = s.samples.at(-1)?.upstreams ?? {};
    table.tBodies[0].replaceChildren(...MEASURES.map(([key, label, show]) =>
      el('tr', {}, el('th', { scope: 'row' }, label(duration(s.intervalMs))), ...s.upstreams.map((name) => {
        const attrs = { 'data-upstream': name, 'data-measure': key };
        if (key !== 'ping') return el('td', attrs, show(last[name] ?? {}));
        // The poller's last GET /ping (every --poll-interval): no probe of our own per refresh.
        const up = s.ping?.[name];
        if (up === undefined || up === null) return el('td', attrs, 'not polled yet');
        return el('td', { ...attrs, class: up ? 'up' : 'down' }, up ? 'answers' : 'down');
      }))));
  }

  // ---- rollout ----------------------------------------------------------------------------
  /** Why an entry of GET /rollout/decisions cannot be drawn as a decision; null when it can. */
  function notDecision(d) {
    if (d === null || typeof d !== 'object' || Array.isArray(d)) return `not a decision: ${JSON.stringify(d)?.slice(0, 40)}`;
    for (const key of ['action', 'at', 'text', 'who']) if (typeof d[key] !== 'string') return `its ${key} is not text`;
    for (const key of ['from', 'to']) if (typeof d[key] !== 'number') return `its ${key} is not a number`;
    if (d.reason !== null && typeof d.reason !== 'string') return 'its reason is not text';
    return null;
  }

  /** A verification's items after a rollback, one line each under its decision: ✔ ok, ✘ failed, – skipped. */
  function verificationItems(v) {
    const items = Array.isArray(v?.items) ? v.items.filter((i) => i !== null && typeof i === 'object' && typeof i.name === 'string') : [];
    if (items.length === 0) return [];
    const look = (i) => (i.ok === true ? ['✔', 'ok'] : i.ok === false ? ['✘', 'fail'] : ['–', 'skipped']);
    return [el('ul', { class: 'items' }, ...items.map((i) => {
      const [mark, status] = look(i);
      return el('li', { class: `s-${status}` }, `${mark} ${i.name}: ${String(i.detail ?? '')}`);
    }))];
  }

  /** Draws the rollout; returns what it could not draw, for the status line. */
  function renderRollout(r, decisions) {
    $('rollout-none').hidden = r !== null;
    $('rollout-body').hidden = r === null;
    $('judged').hidden = r === null;
    if (r === null) return [];
    // The canary's live weight: idle, the rollout's own is 0% whoever set the split.
    $('rollout-weight').replaceChildren(el('span', { class: 'c-canary' }, r.plan.canary), ` at ${pct(r.weights[r.plan.canary])} (baseline `, el('span', { class: 'c-baseline' }, r.plan.baseline), ')');
    const claimed = renderClaim(r.controller ?? null);
    if (claimed) return renderClaimedRollout(r, decisions);
    $('rollout-phase').replaceChildren(el('span', { class: `phase s-${r.phase}` }, r.phase.replace(/_/g, ' ')));
    $('rollout-step').textContent = r.step === null
      ? dash
      : `${r.step.index + 1} of ${r.step.of}: ${pct(r.step.weight)}, held ${duration(r.step.heldMs)} of ${duration(r.step.holdMs)}${r.step.approve ? ', then a person approves' : ''}`;
    const next = [];
    if (r.nextCheckAt) next.push(`check ${until(r.nextCheckAt)}`);
    if (r.reduceAt) next.push(`reduction re-checked ${until(r.reduceAt)}`);
    $('rollout-next').textContent = next.join('; ') || 'nothing due';
    $('rollout-note').textContent = r.note ?? dash;

    const steps = r.plan.steps.split(' → ');
    // What Start's confirmation names.
    rolloutPhase = r.phase;
    // The shadow phase ("shadow 10% 2d") leaves the canary at 0%.
    firstStep = steps[0].startsWith('shadow') ? 0 : Number.parseFloat(steps[0]);
    firstStepText = steps[0];
    const at = r.step?.index ?? -1;
    const live = ACTIVE.has(r.phase);
    $('plan').replaceChildren(...steps.map((text, i) => {
      const state = r.phase === 'complete' || (live && i < at) ? 'done' : live && i === at ? 'current' : undefined;
      return el('li', { class: state, 'aria-current': state === 'current' ? 'step' : undefined }, text);
    }));

    const v = r.lastVerdict;
    // Its p99 and the rest are over the rollout's window, not the backends table's last interval.
    const over = `over the rollout's window (the last ${duration(r.plan.windowMs)} at most, since the step began)`;
    $('checks-window').textContent = over;
    $('verdict').replaceChildren(...(v === null ? ['no check yet'] : [el('span', { class: `s-${v.action}` }, v.action), ` at ${clock(v.at)} ${over}: ${v.text}`]));
    fillTable($('checks'), (v?.checks ?? []).map((c) =>
      // data-label: a phone shows each row as a card, the labels in place of the header.
      el('tr', {}, el('td', {}, c.check), el('td', { class: `s-${c.status}` }, c.status), el('td', { 'data-label': 'value' }, num(c.value)),
        el('td', { 'data-label': 'step limit' }, num(c.limit)), el('td', { 'data-label': 'rollback at' }, num(c.rollbackLimit)), el('td', {}, c.text))),
    v === null ? 'none yet' : 'none: the verdict above says why');
    return renderDecisions(decisions);
  }

  /** The decision log, newest first; returns what it could not draw, for the status line. */
  function renderDecisions(decisions) {
    // Newest first; the API keeps 1,000, a page needs fewer. An entry that is no decision is
    // left out and named: the rest is still drawn.
    if (decisions !== undefined && !Array.isArray(decisions)) {
      $('decisions').tBodies[0].replaceChildren();
      return [`/rollout/decisions: not drawn (not a list: ${JSON.stringify(decisions).slice(0, 40)})`];
    }
    const list = decisions ?? [];
    const from = Math.max(0, list.length - 200);
    const skipped = [];
    const rows = [];
    for (let i = list.length - 1; i >= from; i--) {
      const d = list[i];
      const why = notDecision(d);
      if (why !== null) {
        skipped.push(`entry ${i}: ${why}`);
        continue;
      }
      rows.push(el('tr', { 'data-action': d.action },
        el('td', { title: d.at }, clock(d.at)),
        el('td', { class: `s-${d.action}` }, d.action.replace(/_/g, ' ')),
        el('td', {}, `${pct(d.from)} → ${pct(d.to)}`),
        el('td', { 'data-label': 'by' }, d.who),
        el('td', { 'data-label': 'reason' }, d.reason ?? ''),
        el('td', {}, d.text, ...verificationItems(d.verification))));
    }
    fillTable($('decisions'), rows);
    if (skipped.length === 0) return [];
    const named = skipped.slice(0, 3).join('; ') + (skipped.length > 3 ? `; and ${skipped.length - 3} more` : '');
    return [`/rollout/decisions: ${skipped.length} of ${list.length - from} not drawn (${named})`];
  }

  // ---- a replica claimed by a fleet controller ---------------------------------------------
  const COMMANDS = document.querySelectorAll('#rollout-form button[data-command]');

  /**
   * Says who runs this replica's rollout, with a link to it, and disables the commands the
   * replica refuses meanwhile; false when no controller's claim holds.
   */
  function renderClaim(claim) {
    $('rollout-claim').hidden = claim === null;
    for (const button of COMMANDS) {
      button.disabled = claim !== null;
      button.title = claim === null ? '' : 'run on the fleet controller';
    }
    if (claim === null) return false;
    const where = /^https?:\/\//.test(claim.controller) ? el('a', { href: claim.controller }, claim.controller) : claim.controller;
    $('rollout-claim').replaceChildren(
      'This replica follows the fleet controller at ', where, ` (token ${claim.who}, claim held until ${clock(claim.until)} and renewed while it runs). `,
      "The fleet's rollout, its checks and its commands are there. The controller sets this replica's weights at every interval: a change made here is undone.",
    );
    return true;
  }

  /** A claimed replica's rollout panel: its own rollout cannot run, so its own state (idle) is not what happens. */
  function renderClaimedRollout(r, decisions) {
    rolloutPhase = r.phase;
    $('rollout-phase').replaceChildren(el('span', { class: 'phase s-claimed' }, 'run by the fleet controller'));
    for (const id of ['rollout-step', 'rollout-next', 'verdict']) $(id).textContent = 'on the fleet controller';
    $('rollout-note').textContent = dash;
    $('checks-window').textContent = '';
    $('plan').replaceChildren(...r.plan.steps.split(' → ').map((text) => el('li', {}, text)));
    fillTable($('checks'), [], 'judged on the fleet controller: see its console');
    return renderDecisions(decisions);
  }

  // ---- the fleet's replicas (on a fleet controller) -----------------------------------------
  const listWeights = (w) => Object.entries(w).map(([n, p]) => `${n} ${pct(p)}`).join(', ');

  /** Each replica's last round, from the controller's GET /rollout (its `fleet`); hidden elsewhere. */
  function renderFleet(fleet) {
    $('fleet').hidden = fleet === undefined;
    if (fleet === undefined) return;
    $('fleet-about').textContent = `The fleet's numbers come from Prometheus at ${fleet.prometheus}. At every interval, after its check, the controller brings each replica to the fleet's weights; each row is a replica's last round.`;
    fillTable($('replicas'), fleet.replicas.map((x) => el('tr', { 'data-replica': x.url },
      // Its own console, which shows the claim.
      el('td', {}, el('a', { href: `${x.url}/` }, x.url)),
      el('td', { class: `s-${x.status}`, 'data-label': 'status' }, x.status),
      el('td', { 'data-label': 'found' }, x.weights === null ? dash : listWeights(x.weights)),
      el('td', {}, x.detail),
      el('td', { title: x.at }, clock(x.at)))), 'none listed yet');
  }

  // ---- the weight history (GET /history) ---------------------------------------------------
  /** The newest entries a page shows; the API keeps more. */
  const HISTORY_ROWS = 100;

  function renderHistory(h) {
    fillTable($('history-table'), h.history.slice(-HISTORY_ROWS).reverse().map((e) => {
      // What changed, from what (the first entry has no before).
      const changed = Object.keys(e.to).filter((n) => e.from[n] !== e.to[n]);
      const shown = changed.length === 0 ? listWeights(e.to) : changed.map((n) => (n in e.from ? `${n} ${pct(e.from[n])} → ${pct(e.to[n])}` : `${n} ${pct(e.to[n])}`)).join(', ');
      return el('tr', { 'data-source': e.source },
        el('td', { title: e.at }, clock(e.at)),
        // Who, and through what (admin, file, env) where the name does not say it.
        el('td', { 'data-label': 'by' }, e.who.includes(e.source) ? e.who : `${e.who} (${e.source})`),
        el('td', {}, shown),
        el('td', { 'data-label': 'reason' }, e.reason ?? ''));
    }));
  }

  /** Start, asked first with the weight it sets; the body to send, or null when cancelled. */
  async function startAsked() {
    const current = weights?.weights?.[canary];
    // A start that would lower the canary (set by hand, or at 100% after a complete rollout) is
    // refused by the API unless forced: asked as such here, as the CLI's --force.
    const lowers = !ACTIVE.has(rolloutPhase) && current > firstStep;
    const text = lowers
      ? `Start takes ${canary} from ${pct(current)} down to ${pct(firstStep)}, the plan's first step. Start anyway?`
      : `Start takes ${canary} from ${pct(current)} to ${pct(firstStep)}, the plan's first step (${firstStepText}).`;
    if (!(await confirmDialog(lowers ? 'Start lowers the canary' : 'Start the rollout', text, `Start at ${pct(firstStep)}`))) {
      $('rollout-result').textContent = `Not started: ${canary} stays at ${pct(current)}.`;
      return null;
    }
    return lowers ? { force: true } : {};
  }

  for (const button of COMMANDS) {
    button.addEventListener('click', async () => {
      const command = button.dataset.command;
      if (command === 'abort' && !(await confirmDialog('Abort the rollout', `${canary ?? 'The canary'} goes to 0% and the rollout ends.`, 'Abort'))) return;
      const body = command === 'start' ? await startAsked() : {};
      if (body === null) return;
      await write('POST', `/rollout/${command}`, body, $('rollout-result'), (j) => `${command}: now ${j.phase.replace(/_/g, ' ')}, canary at ${pct(j.weight)}.`, 'rollout-reason');
    });
  }

  // ---- recording and shadow ---------------------------------------------------------------
  /** Fills a switch's form from the server unless someone is editing it. */
  function switchForm(prefix, view) {
    const form = $(`${prefix}-form`);
    if (form.dataset.dirty === 'yes' || form.contains(document.activeElement)) return;
    $(`${prefix}-enabled`).checked = view.enabled;
    $(`${prefix}-rate`).value = String(+(view.sampleRate * 100).toFixed(6));
  }

  function renderRecording(v) {
    $('recording').hidden = v === null;
    if (v === null) return;
    $('recording-state').textContent = v.enabled
      ? `On: ${rate(v.sampleRate)} of the requests on ${v.paths.length} paths, to ${v.file}.`
      : v.file === null ? 'Off, and no --record file: it cannot be switched on here.' : `Off (file ${v.file}, ${rate(v.sampleRate)} when on).`;
    switchForm('recording', v);
  }

  function renderShadow(v) {
    $('shadow').hidden = v === null;
    if (v === null) return;
    const c = v.counts;
    const match = v.matchRate === null ? 'no copies compared yet' : `match rate ${rate(v.matchRate)}`;
    $('shadow-state').textContent = `${v.enabled ? 'On' : 'Off'}: ${rate(v.sampleRate)} of the baseline's requests copied to ${v.upstream ?? dash}; ${match} (${c.match} match, ${c.mismatch} mismatch, ${c.error} error, ${c.dropped} dropped; ${v.inflight} in flight).`;
    switchForm('shadow', v);
  }

  for (const prefix of ['recording', 'shadow']) {
    const form = $(`${prefix}-form`);
    form.addEventListener('input', () => (form.dataset.dirty = 'yes'));
    form.addEventListener('submit', async (e) => {
      e.preventDefault();
      const body = { enabled: $(`${prefix}-enabled`).checked, sampleRate: Number($(`${prefix}-rate`).value) / 100 };
      const done = await write('PUT', `/${prefix}`, body, $(`${prefix}-result`), (j) => `${prefix} ${j.enabled ? 'on' : 'off'} at ${rate(j.sampleRate)}.`, `${prefix}-reason`);
      if (done) delete form.dataset.dirty;
    });
  }

  // ---- which server: a proxy, or a fleet controller --------------------------------------
  /** GET /about, once read: the server's kind and the reads it answers (the page asks for no other). */
  let about = null;

  function learnServer(a) {
    const controller = a.server === 'controller';
    document.body.classList.toggle('controller', controller);
    $('title').textContent = controller ? 'drum-splitter fleet controller' : 'drum-splitter';
    document.title = `${$('title').textContent} console`;
    // No samples and no switches on a controller: their panels are not shown.
    for (const [id, path] of [['backends', '/series'], ['charts', '/series'], ['recording', '/recording'], ['shadow', '/shadow']]) $(id).hidden = !a.reads.includes(path);
    return a;
  }

  // ---- a server that stopped answering ------------------------------------------------------
  /** When the server last answered, and since when it answers nothing (null while it does). */
  let answeredAt = null;
  let silentSince = null;

  /** The page as last drawn is kept, greyed; the /ping it shows would be old news, so it says unknown. */
  function showSilence() {
    document.body.classList.add('stale');
    for (const td of document.querySelectorAll('#backend-table td[data-measure="ping"]')) {
      td.className = '';
      td.textContent = 'unknown';
    }
    const since = `the server does not answer, since ${clock(new Date(silentSince).toISOString())} (${duration(Date.now() - silentSince)})`;
    return answeredAt === null ? `${since}: nothing read yet` : `${since}; what is shown is from ${clock(new Date(answeredAt).toISOString())}`;
  }

  // ---- cohorts ----------------------------------------------------------------------------
  /** A condition's value as the rule gives it: "text", or /regex/. */
  const valueText = (v) => (typeof v === 'string' ? JSON.stringify(v) : `/${v.regex}/`);

  /** A rule's conditions in a line: header x-beta = "1", path starts /v2/, method ~ /^(GET|HEAD)$/. */
  function conditions(match) {
    const said = [];
    const test = (v, exact) => (typeof v === 'string' ? `${exact} ${valueText(v)}` : `~ ${valueText(v)}`);
    for (const [name, v] of Object.entries(match.header ?? {})) said.push(`header ${name} ${test(v, '=')}`);
    for (const [name, v] of Object.entries(match.cookie ?? {})) said.push(`cookie ${name} ${test(v, '=')}`);
    if (match.path !== undefined) said.push(`path ${test(match.path, 'starts')}`);
    if (match.method !== undefined) said.push(`method ${test(match.method, '=')}`);
    return said.join(', and ');
  }

  /** The rules with their counts (GET /routes), and what the rollout's last window left to them (GET /rollout). */
  function renderCohorts(v, rollout) {
    $('cohorts').hidden = v === null;
    if (v === null) return;
    $('cohorts-state').textContent = v.routes.length === 0
      ? 'No rules: every request goes through the split.'
      : `${v.routes.length} rule${v.routes.length === 1 ? '' : 's'}, version ${v.version} (${v.source}, ${clock(v.updatedAt)}).`;
    fillTable($('cohort-table'), v.routes.map((r) => el('tr', { 'data-route': r.name },
      el('th', { scope: 'row' }, r.name),
      el('td', {}, conditions(r.match)),
      el('td', {}, r.upstream === undefined ? 'the split' : el('span', { class: `c-${role(r.upstream)}` }, r.upstream)),
      el('td', { 'data-measure': 'matches' }, String(r.matches)))), 'no rules');
    const routed = Object.entries(rollout?.lastVerdict?.routed ?? {}).filter(([, n]) => n > 0);
    $('cohorts-routed').textContent = routed.length === 0 ? '' : `In the rollout's last window the rules took ${routed.map(([name, n]) => `${num(n)} to ${name}`).join(' and ')}: not judged.`;
  }

  // ---- polling ----------------------------------------------------------------------------
  /** JSON of a read; null for a 404. */
  async function read(path) {
    const res = await fetch(path, { cache: 'no-store' });
    if (res.status === 404) return null;
    const json = await res.json();
    if (!res.ok) throw new Error(`${path}: ${res.status} ${json.message ?? ''}`);
    return json;
  }

  let timer;
  let busy = false;
  let again = false;

  async function poll() {
    clearTimeout(timer);
    timer = undefined;
    if (busy) {
      again = true;
      return;
    }
    busy = true;
    const problems = [];
    /** Reads the server answered (well or not), and reads nothing answered. */
    let answered = 0;
    let unanswered = 0;
    try {
      /** A read's JSON; undefined (and a line in the status) when it failed. */
      const settle = async (path) => {
        try {
          const json = await read(path);
          answered++;
          return json;
        } catch (err) {
          // fetch's TypeError: no answer at all (the server gone, the network down).
          if (err instanceof TypeError) unanswered++;
          else answered++;
          problems.push(err.message.startsWith('/') ? err.message : `${path}: ${err.message}`);
          return undefined;
        }
      };
      if (about === null) {
        const a = await settle('/about');
        if (a) about = learnServer(a);
      }
      if (about !== null) {
        // null: not on this server (no rollout with one upstream, no samples or switches on a controller).
        const readIf = (path) => (about.reads.includes(path) ? settle(path) : null);
        const [w, h, s, r, d, rec, sh, routes] = await Promise.all([
          settle('/weights'),
          settle('/history'),
          readIf('/series'),
          readIf('/rollout'),
          readIf('/rollout/decisions'),
          readIf('/recording'),
          readIf('/shadow'),
          readIf('/routes'),
        ]);
        if (r !== undefined) {
          baseline = r?.plan.baseline ?? baseline;
          canary = r?.plan.canary ?? canary;
        }
        if (s) {
          baseline ??= s.baseline;
          canary ??= s.upstreams.find((n) => n !== s.baseline) ?? null;
        }
        // Each part drawn on its own: one the page cannot draw is named, the others still shown.
        const parts = [
          ['/weights', w, renderWeights],
          ['/history', h, renderHistory],
          ['/series', s, (v) => v && renderSeries(v)],
          ['/recording', rec, renderRecording],
          ['/shadow', sh, renderShadow],
          ['/rollout', r, (v) => renderRollout(v, d?.decisions)],
          ['/rollout', r, (v) => renderFleet(v?.fleet)],
          ['/routes', routes, (v) => renderCohorts(v, r)],
        ];
        for (const [path, value, render] of parts) {
          if (value === undefined) continue;
          try {
            problems.push(...(render(value) || []));
          } catch (err) {
            problems.push(`${path}: not drawn (${err.message})`);
          }
        }
      }
    } catch (err) {
      problems.push(err.message);
    } finally {
      busy = false;
    }
    const silent = answered === 0 && unanswered > 0;
    if (silent) silentSince ??= Date.now();
    else {
      silentSince = null;
      answeredAt = Date.now();
      document.body.classList.remove('stale');
    }
    $('updated').textContent = silent ? showSilence() : problems.length === 0 ? `live, updated ${clock(new Date().toISOString())}` : `not all read: ${problems.join('; ')}`;
    $('updated').className = problems.length === 0 ? 'muted' : 'result error';
    if (again) {
      again = false;
      return poll();
    }
    // Nothing is read while the tab is hidden; visibilitychange starts again.
    if (!document.hidden) timer = setTimeout(poll, POLL_MS);
  }

  document.addEventListener('visibilitychange', () => {
    if (document.hidden) {
      clearTimeout(timer);
      timer = undefined;
    } else void poll();
  });

  showToken();
  void poll();
})();
