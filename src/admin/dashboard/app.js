// Switchyard dashboard: reads the admin JSON API with a read token kept in sessionStorage.
// Every value from the API is put in the page as text (never as HTML).
'use strict';

const TOKEN_KEY = 'switchyard.token';
const SVG_NS = 'http://www.w3.org/2000/svg';
const BUCKETS = { '1h': '1m', '6h': '5m', '24h': '15m', '7d': '2h' };

const state = { routes: null, report: null, timeline: null, selected: null, sampleId: null };

// ---------- small DOM helpers ----------

function el(tag, attrs, ...children) {
  const node = document.createElement(tag);
  for (const [k, v] of Object.entries(attrs || {})) {
    if (v === null || v === undefined || v === false) continue;
    if (k === 'class') node.className = v;
    else if (k.startsWith('on')) node.addEventListener(k.slice(2), v);
    else node.setAttribute(k, v === true ? '' : String(v));
  }
  for (const c of children.flat()) {
    if (c === null || c === undefined || c === false) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

function svg(tag, attrs, ...children) {
  const node = document.createElementNS(SVG_NS, tag);
  for (const [k, v] of Object.entries(attrs || {})) node.setAttribute(k, String(v));
  for (const c of children.flat()) {
    if (c === null || c === undefined) continue;
    node.append(c instanceof Node ? c : document.createTextNode(String(c)));
  }
  return node;
}

const $ = (id) => document.getElementById(id);

function clear(node) { while (node.firstChild) node.removeChild(node.firstChild); return node; }

function pct(v, digits = 1) { return v === null || v === undefined ? '–' : `${Number(v).toFixed(digits)}%`; }
function num(v) { return v === null || v === undefined ? '–' : Number(v).toLocaleString('en-US'); }
function ms(v) { return v === null || v === undefined ? '–' : (v < 10 ? `${v.toFixed(2)} ms` : `${v.toFixed(0)} ms`); }
function time(msEpoch) {
  if (!msEpoch) return '–';
  const d = new Date(msEpoch);
  return d.toISOString().replace('T', ' ').slice(0, 19) + 'Z';
}
function ago(msEpoch) {
  if (!msEpoch) return '–';
  const s = Math.max(0, (Date.now() - msEpoch) / 1000);
  if (s < 90) return `${Math.round(s)} s ago`;
  if (s < 5400) return `${Math.round(s / 60)} min ago`;
  if (s < 129600) return `${Math.round(s / 3600)} h ago`;
  return `${Math.round(s / 86400)} d ago`;
}

function verdictBadge(verdict) {
  const words = { ready: 'ready', not_ready: 'not ready', insufficient_data: 'insufficient data' };
  return el('span', { class: `badge v-${verdict || 'none'}` }, words[verdict] || 'no data');
}

// ---------- API ----------

class ApiError extends Error {
  constructor(status, message) { super(message); this.status = status; }
}

async function api(path, options = {}) {
  const token = sessionStorage.getItem(TOKEN_KEY);
  const headers = Object.assign({ Accept: 'application/json' }, options.headers || {});
  if (token) headers.Authorization = 'Bearer ' + token;
  const response = await fetch(path, Object.assign({}, options, { headers, cache: 'no-store' }));
  let body = null;
  try { body = await response.json(); } catch (_) { body = null; }
  if (!response.ok) {
    const message = body && body.error ? body.error : `${response.status} ${response.statusText}`;
    throw new ApiError(response.status, message);
  }
  return body;
}

// ---------- sign-in ----------

function showSignin(message) {
  $('app').hidden = true;
  $('actions').hidden = true;
  $('signin').hidden = false;
  clear($('meta'));
  $('signin-error').textContent = message || '';
  $('token').focus();
}

async function signin(event) {
  event.preventDefault();
  const token = $('token').value.trim();
  if (!token) return;
  sessionStorage.setItem(TOKEN_KEY, token);
  $('token').value = '';
  try {
    await api('/admin/status');
  } catch (e) {
    sessionStorage.removeItem(TOKEN_KEY);
    showSignin(e.status === 401 ? 'That token is not accepted.' : e.message);
    return;
  }
  $('signin').hidden = true;
  await load();
}

function signout() {
  sessionStorage.removeItem(TOKEN_KEY);
  showSignin('');
}

// ---------- loading ----------

async function load() {
  const windowValue = $('window').value;
  const bucket = BUCKETS[windowValue] || '5m';
  let status;
  try {
    status = await api('/admin/status');
  } catch (e) {
    if (e.status === 401) { signout(); $('signin-error').textContent = 'Signed out: ' + e.message; return; }
    showNotice(e.message);
    return;
  }
  $('app').hidden = false;
  $('actions').hidden = false;
  renderMeta(status);
  renderGuards(status.guards || []);
  const notices = [];
  const [routes, report, timeline, audit] = await Promise.all([
    api('/admin/routes').catch((e) => { notices.push(e.message); return null; }),
    api(`/admin/shadow/report?since=${encodeURIComponent(windowValue)}`).catch((e) => { notices.push(e.message); return null; }),
    api(`/admin/shadow/timeline?since=${encodeURIComponent(windowValue)}&bucket=${bucket}`).catch(() => null),
    api('/admin/audit?limit=10').catch((e) => { if (e.status !== 503) notices.push(e.message); return null; }),
  ]);
  state.routes = routes;
  state.report = report;
  state.timeline = timeline;
  showNotice(notices.join(' · '));
  renderMatrix();
  chooseRoute();
  renderAudit(audit);
}

function showNotice(text) {
  const n = $('notice');
  n.textContent = text || '';
  n.hidden = !text;
}

function renderMeta(status) {
  const meta = clear($('meta'));
  meta.append(
    el('span', {}, 'generation ', el('b', {}, status.generation)),
    el('span', {}, `loaded ${ago(status.loaded_at)}`),
    status.last_reload_error
      ? el('span', { class: 'bad' }, 'last reload rejected')
      : el('span', { class: 'good' }, 'config ok'),
    el('span', {}, `updated ${new Date().toLocaleTimeString('en-GB')}`),
  );
}

function reportFor(route) {
  const routes = (state.report && state.report.routes) || [];
  return routes.find((r) => r.route === route) || null;
}

// ---------- migration matrix ----------

function renderMatrix() {
  const table = clear($('matrix'));
  const routes = (state.routes && state.routes.routes) || [];
  table.append(el('thead', {}, el('tr', {},
    el('th', {}, 'Route'),
    el('th', { class: 'state-col' }, 'legacy'),
    el('th', { class: 'state-col' }, 'rollout'),
    el('th', { class: 'state-col' }, 'new'),
    el('th', {}, 'Percent'),
    el('th', {}, 'Traffic 1h (legacy / new)'),
    el('th', {}, 'Tenants on new'),
    el('th', {}, 'Shadow'),
    el('th', {}, 'Parity'),
    el('th', {}, 'Verdict'),
  )));
  const body = el('tbody');
  if (!routes.length) body.append(el('tr', {}, el('td', { colspan: 10, class: 'empty' }, 'No routes.')));
  for (const r of routes) {
    const rep = reportFor(r.name);
    const t = (r.traffic && r.traffic['1h']) || {};
    const total = (t.legacy || 0) + (t.new || 0);
    const share = total ? (t.new || 0) / total : null;
    const onNew = r.tenants_on_new || {};
    const names = (onNew.tenants || []).slice(0, 4).join(', ');
    const more = (onNew.count || 0) > 4 ? ` +${onNew.count - 4}` : '';
    const cell = (s) => el('td', { class: 'state-col' },
      r.state === s ? el('span', { class: `dot s-${s}`, title: `state ${s}` }, s === 'new' ? 'cut over' : s === 'legacy' ? 'kill switch' : 'rolling') : el('span', { class: 'dot off' }));
    body.append(el('tr', { class: state.selected === r.name ? 'selected' : null },
      el('td', {}, el('a', { href: '#', class: 'route-link', onclick: (e) => { e.preventDefault(); selectRoute(r.name); } }, r.name)),
      cell('legacy'), cell('rollout'), cell('new'),
      el('td', { class: 'num' }, `${r.percent}%`),
      el('td', {}, trafficBar(t.legacy || 0, t.new || 0, share)),
      el('td', {}, el('span', { class: 'count' }, num(onNew.count || 0)), names ? ` ${names}${more}` : ''),
      el('td', {}, r.shadow && r.shadow.on ? `${r.shadow.percent}%` : el('span', { class: 'muted' }, 'off')),
      el('td', { class: 'num' }, rep ? pct(rep.parity.percent, 2) : '–'),
      el('td', {}, rep ? verdictBadge(rep.verdict) : el('span', { class: 'muted' }, 'no shadow data')),
    ));
  }
  table.append(body);
}

function trafficBar(legacy, fresh, share) {
  const wrap = el('div', { class: 'traffic' });
  const bar = el('div', { class: 'tbar', title: `legacy ${legacy}, new ${fresh}` });
  const w = share === null ? 0 : Math.round(share * 100);
  bar.append(el('span', { class: 'tnew', style: null }));
  bar.firstChild.style.width = `${w}%`;
  wrap.append(bar, el('span', { class: 'tlabel' }, share === null ? 'no traffic' : `${num(legacy)} / ${num(fresh)} · ${w}% new`));
  return wrap;
}

// ---------- per-route shadow detail ----------

function chooseRoute() {
  const reported = ((state.report && state.report.routes) || []).map((r) => r.route);
  if (!state.selected || !reported.includes(state.selected)) {
    // Prefer a route that needs attention.
    const rs = (state.report && state.report.routes) || [];
    const pick = rs.find((r) => r.verdict === 'not_ready') || rs[0];
    state.selected = pick ? pick.route : null;
  }
  renderTabs();
  renderRoute();
}

function selectRoute(name) {
  state.selected = name;
  state.sampleId = null;
  $('sample-panel').hidden = true;
  renderMatrix();
  renderTabs();
  renderRoute();
}

function renderTabs() {
  const tabs = clear($('route-tabs'));
  for (const r of (state.report && state.report.routes) || []) {
    tabs.append(el('button', {
      type: 'button', role: 'tab', class: r.route === state.selected ? 'tab active' : 'tab',
      'aria-selected': r.route === state.selected ? 'true' : 'false',
      onclick: () => selectRoute(r.route),
    }, r.route, ' ', el('span', { class: `pip v-${r.verdict}` })));
  }
}

function renderRoute() {
  const box = clear($('route-detail'));
  if (!state.report) { box.append(el('p', { class: 'muted' }, 'No shadow report (see the notice above).')); return; }
  const r = reportFor(state.selected);
  if (!r) { box.append(el('p', { class: 'muted' }, 'No shadow results in this window yet.')); return; }

  const skipped = Object.entries(r.skipped_by_reason || {}).map(([k, v]) => `${k} ${v}`).join(', ');
  box.append(el('div', { class: 'verdict-line' },
    verdictBadge(r.verdict), el('span', { class: 'reason' }, r.verdict_reason)));
  box.append(el('div', { class: 'stats' },
    stat('Parity', pct(r.parity.percent, 2), r.parity.ci95_low === null ? '' : `95% CI ${pct(r.parity.ci95_low, 2)} – ${pct(r.parity.ci95_high, 2)} · target ${pct(r.parity.target, 1)}`),
    stat('Compared', num(r.compared), `${num(r.self_checked)} self-checks`),
    stat('Matched', num(r.matched), ''),
    stat('Mismatched', num(r.mismatched), '', r.mismatched ? 'bad' : ''),
    stat('Noise only', num(r.noise_only), ''),
    stat('Errors', num(r.errors), '', r.errors ? 'bad' : ''),
    stat('Skipped', num(r.skipped), skipped),
  ));

  const grid = el('div', { class: 'grid2' });
  grid.append(el('div', {}, el('h3', {}, 'Mismatch rate over time'), chart(r.route)));
  grid.append(el('div', {}, el('h3', {}, 'Latency per side'), latencyTable(r.latency || [])));
  box.append(grid);

  box.append(el('h3', {}, `Top differing paths (${r.differing_paths} in all)`));
  box.append(pathsTable(r.top_paths || []));
  if ((r.suggested_ignore || []).length) {
    const list = el('ul', { class: 'suggest' });
    for (const s of r.suggested_ignore) {
      list.append(el('li', {}, el('code', {}, s.ignore), ` looks like ${s.looks_like.replace('_', ' ')}`,
        s.examples && s.examples.length ? el('span', { class: 'muted' }, ` (e.g. ${s.examples[0]})`) : ''));
    }
    box.append(el('h3', {}, 'Suggested ignore rules'), list,
      el('pre', { class: 'curl' }, `compare = { ignore = ${JSON.stringify(r.suggested_compare_ignore || [])} }`));
  }

  // Show a diff right away: the first sample of the top real path (else of any path).
  const withSamples = (r.top_paths || []).filter((p) => (p.sample_ids || []).length);
  const first = withSamples.find((p) => !p.noise) || withSamples[0];
  if (first && state.sampleId === null) loadSample(first.sample_ids[0]);
}

function stat(label, value, sub, cls) {
  return el('div', { class: `stat ${cls || ''}` },
    el('div', { class: 'label' }, label), el('div', { class: 'value' }, value),
    sub ? el('div', { class: 'sub' }, sub) : null);
}

function latencyTable(rows) {
  if (!rows.length) return el('p', { class: 'muted' }, 'No timings.');
  return el('table', { class: 'plain' },
    el('thead', {}, el('tr', {}, el('th', {}, 'Side'), el('th', {}, 'Count'), el('th', {}, 'p50'), el('th', {}, 'p95'), el('th', {}, 'p99'))),
    el('tbody', {}, rows.map((l) => el('tr', {},
      el('td', {}, el('span', { class: `side s-${l.side}` }, l.side)), el('td', { class: 'num' }, num(l.count)),
      el('td', { class: 'num' }, ms(l.p50_ms)), el('td', { class: 'num' }, ms(l.p95_ms)), el('td', { class: 'num' }, ms(l.p99_ms))))));
}

function pathsTable(paths) {
  if (!paths.length) return el('p', { class: 'muted' }, 'No differences.');
  return el('div', { class: 'scroll' }, el('table', { class: 'plain paths' },
    el('thead', {}, el('tr', {},
      el('th', {}, 'Path'), el('th', {}, 'Kind'), el('th', {}, 'Count'), el('th', {}, 'Rate'),
      el('th', {}, 'Class'), el('th', {}, 'First seen'), el('th', {}, 'Last seen'), el('th', {}, 'Samples'))),
    el('tbody', {}, paths.map((p) => el('tr', {},
      el('td', {}, el('code', {}, p.pattern)),
      el('td', {}, p.kind),
      el('td', { class: 'num' }, num(p.count)),
      el('td', { class: 'num' }, pct(100 * p.rate, 1)),
      el('td', {}, el('span', { class: `cls c-${p.classification}` }, p.classification)),
      el('td', {}, ago(p.first_seen_ms)),
      el('td', {}, ago(p.last_seen_ms)),
      el('td', {}, (p.sample_ids || []).slice(0, 3).map((id) => el('button', {
        type: 'button', class: state.sampleId === id ? 'chip active' : 'chip', onclick: () => loadSample(id),
      }, `#${id}`))),
    )))));
}

// ---------- chart (inline SVG) ----------

function chart(route) {
  const series = ((state.timeline && state.timeline.routes) || []).find((r) => r.route === route);
  const points = series ? series.points.filter((p) => p.compared > 0) : [];
  if (!points.length) return el('p', { class: 'muted' }, 'No comparisons in this window.');
  const W = 560, H = 200, L = 44, R = 12, T = 12, B = 28;
  const bucket = (state.timeline && state.timeline.bucket_ms) || 60000;
  // The whole window, so a burst shows where it happened.
  const since = state.timeline && state.timeline.since_ms;
  const first = Math.min(...points.map((p) => p.at_ms));
  const t0 = since ? Math.min(first, since - (since % bucket)) : first;
  const t1 = Math.max(t0 + bucket, Date.now(), ...points.map((p) => p.at_ms + bucket));
  const maxRate = Math.max(0.05, ...points.map((p) => Math.max(p.mismatch_rate || 0, p.error_rate || 0)));
  const yMax = niceCeil(maxRate * 100);
  const x = (t) => L + ((t - t0) / (t1 - t0)) * (W - L - R);
  const y = (rate) => T + (1 - (rate * 100) / yMax) * (H - T - B);
  const root = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img', 'aria-label': `mismatch rate of ${route}` });
  for (let i = 0; i <= 4; i++) {
    const v = (yMax * i) / 4;
    const yy = y(v / 100);
    root.append(svg('line', { x1: L, x2: W - R, y1: yy, y2: yy, class: 'grid' }));
    root.append(svg('text', { x: L - 6, y: yy + 4, class: 'axis', 'text-anchor': 'end' }, `${Number(v.toFixed(1))}%`));
  }
  for (const t of [t0, (t0 + t1) / 2, t1]) {
    root.append(svg('text', { x: x(t), y: H - 8, class: 'axis', 'text-anchor': t === t0 ? 'start' : t === t1 ? 'end' : 'middle' },
      new Date(t).toISOString().slice(11, 16)));
  }
  const bw = Math.max(3, (x(t0 + bucket) - x(t0)) * 0.7);
  for (const p of points) {
    root.append(svg('rect', {
      x: x(p.at_ms) + 1, y: y(p.mismatch_rate || 0), width: bw,
      height: Math.max(0, H - B - y(p.mismatch_rate || 0)), class: 'bar',
    }, svg('title', {}, `${time(p.at_ms)}: ${p.mismatched} of ${p.compared} mismatched`)));
  }
  const line = (key, cls) => svg('polyline', {
    class: cls, points: points.map((p) => `${x(p.at_ms) + 1 + bw / 2},${y(p[key] || 0)}`).join(' '),
  });
  if (points.length > 1) root.append(line('mismatch_rate', 'line'));
  for (const p of points) {
    if (p.errors > 0) root.append(svg('circle', { cx: x(p.at_ms) + 1 + bw / 2, cy: y(p.error_rate || 0), r: 3, class: 'dot-err' }));
  }
  return el('div', {}, root, el('div', { class: 'legend' },
    el('span', { class: 'key k-mis' }), 'mismatched / compared per ', fmtBucket(bucket),
    points.some((p) => p.errors > 0) ? [el('span', { class: 'key k-err' }), 'error rate'] : null));
}

function niceCeil(v) {
  for (const step of [1, 2, 5, 10, 20, 25, 50, 100]) if (v <= step) return step;
  return 100;
}

function fmtBucket(b) { return b >= 3600000 ? `${b / 3600000} h` : `${b / 60000} min`; }

// ---------- one sample, side by side ----------

async function loadSample(id) {
  state.sampleId = id;
  const panel = $('sample-panel');
  panel.hidden = false;
  const box = clear($('sample'));
  box.append(el('p', { class: 'muted' }, `Loading sample #${id}…`));
  let s;
  try {
    s = await api(`/admin/shadow/samples/${encodeURIComponent(id)}`);
  } catch (e) {
    clear(box).append(el('p', { class: 'error' }, e.message));
    return;
  }
  for (const chip of document.querySelectorAll('.chip')) chip.classList.toggle('active', chip.textContent === `#${id}`);
  $('sample-title').textContent = `Sample #${s.id} · ${s.route}${s.tenant ? ' · tenant ' + s.tenant : ''}`;
  clear(box);
  box.append(el('p', { class: 'sample-meta' },
    el('code', {}, `${s.request.method} ${s.request.uri}`), ` · illustrates `, el('code', {}, s.pattern || '(match)'),
    ` (${s.kind}) · ${time(s.at_ms)}`, s.body_comparison ? ` · body ${s.body_comparison}` : ''));
  const diffs = s.differences || [];
  if (diffs.length) {
    box.append(el('div', { class: 'difflist' }, diffs.slice(0, 12).map((d) => el('span', { class: 'diffitem' },
      el('code', {}, d.path || '/'), ' ', el('span', { class: 'old' }, d.primary ?? '∅'), ' → ', el('span', { class: 'new' }, d.shadow ?? '∅')))));
  }
  const side = (r, label) => el('div', { class: 'colhead' },
    el('span', { class: `side s-${r.side}` }, r.side), ` ${label} · ${r.status} · ${ms(r.elapsed_ms)}`);
  const table = el('table', { class: 'sbs' },
    el('colgroup', {}, el('col', { class: 'c-ln' }), el('col'), el('col', { class: 'c-ln' }), el('col')),
    el('thead', {}, el('tr', {}, el('th', { colspan: 2 }, side(s.primary, 'primary')), el('th', { colspan: 2 }, side(s.shadow, 'shadow')))));
  const tbody = el('tbody');
  let ln = 0, rn = 0;
  for (const row of s.rows || []) {
    if (row.left !== null) ln++;
    if (row.right !== null) rn++;
    tbody.append(el('tr', { class: `r-${row.tag}` },
      el('td', { class: 'ln' }, row.left !== null ? ln : ''), el('td', { class: 'code l' }, row.left ?? ''),
      el('td', { class: 'ln' }, row.right !== null ? rn : ''), el('td', { class: 'code r' }, row.right ?? '')));
  }
  table.append(tbody);
  box.append(el('div', { class: 'scroll' }, table));
  if (s.rows_truncated) box.append(el('p', { class: 'muted' }, 'Long bodies: the view is cut.'));
  const copy = el('button', { type: 'button', class: 'quiet', onclick: () => navigator.clipboard && navigator.clipboard.writeText(s.curl) }, 'Copy');
  box.append(el('h3', {}, 'Replay (credentials removed)'), el('div', { class: 'curlrow' }, el('pre', { class: 'curl' }, s.curl), copy));
}

// ---------- guards ----------

function renderGuards(guards) {
  $('guard-panel').hidden = !guards.length;
  const table = clear($('guards'));
  table.append(el('thead', {}, el('tr', {},
    el('th', {}, 'Route'), el('th', {}, 'Guard'), el('th', {}, 'Action'), el('th', {}, 'Step'),
    el('th', {}, 'Next'), el('th', {}, 'Last judged'))));
  const body = el('tbody');
  for (const g of guards) {
    const s = g.schedule;
    let step = '–';
    let next = '–';
    if (s) {
      step = `${s.step} of ${s.steps.length} · ${s.percent}%`;
      if (s.hold) next = el('span', { class: 'bad' }, `held: ${s.hold}`);
      else if (s.next_percent === null) next = 'last step reached';
      else if (s.next_step_at_ms) next = `${s.next_percent}% at ${time(s.next_step_at_ms)}`;
      else next = `${s.next_percent}%`;
    }
    const e = g.evidence;
    const rate = (v) => (v === null || v === undefined ? '–' : pct(v * 100, 2));
    const judged = e
      ? `errors ${rate(e.error_rate)} of ${num(e.requests)} · latency ×${e.latency_ratio === null ? '–' : e.latency_ratio.toFixed(2)} · mismatch ${rate(e.mismatch_rate)}`
      : el('span', { class: 'muted' }, g.driving ? 'not judged yet' : 'judged by the driving replica');
    body.append(el('tr', {},
      el('td', {}, g.route),
      el('td', {}, el('span', { class: `badge guard-${g.state}` }, g.state)),
      el('td', {}, g.action || '–'),
      el('td', {}, step),
      el('td', {}, next),
      el('td', {}, judged),
    ));
  }
  table.append(body);
}

// ---------- audit ----------

function renderAudit(audit) {
  const table = clear($('audit'));
  const entries = (audit && audit.entries) || [];
  table.append(el('thead', {}, el('tr', {},
    el('th', {}, 'When'), el('th', {}, 'Who'), el('th', {}, 'Action'), el('th', {}, 'Target'), el('th', {}, 'Change'), el('th', {}, 'Generation'), el('th', {}, 'Reason'))));
  const body = el('tbody');
  if (!entries.length) body.append(el('tr', {}, el('td', { colspan: 7, class: 'empty' }, audit ? 'No changes yet.' : 'Audit log unavailable.')));
  for (const e of entries) {
    body.append(el('tr', {},
      el('td', { title: time(e.at_ms) }, ago(e.at_ms)),
      el('td', {}, e.token_name),
      el('td', {}, e.action, e.dry_run ? el('span', { class: 'muted' }, ' (dry run)') : ''),
      el('td', {}, e.target),
      el('td', {}, changes(e.before, e.after)),
      el('td', { class: 'num' }, e.generation ?? '–'),
      el('td', {}, e.reason || ''),
    ));
  }
  table.append(body);
}

function changes(before, after) {
  if (!before || !after || typeof after !== 'object') return '';
  // Guard trips and schedule steps: the rules before → after, then the figures they acted on.
  if (after.rules) {
    const breached = ((after.evidence && after.evidence.breached) || [])
      .map((b) => `${b.figure} ${Number(b.value).toFixed(4)} > ${b.limit}`);
    const forced = after.forced ? ['forced past not_ready'] : [];
    return [changes(before, after.rules), ...breached, ...forced].filter(Boolean).join('; ');
  }
  const parts = [];
  for (const [k, v] of Object.entries(after)) {
    const old = before[k];
    if (JSON.stringify(old) !== JSON.stringify(v)) parts.push(`${k}: ${short(old)} → ${short(v)}`);
  }
  return parts.join('; ');
}

function short(v) {
  if (v === undefined || v === null) return '–';
  if (Array.isArray(v)) return `[${v.slice(0, 4).join(', ')}${v.length > 4 ? ', …' : ''}]`;
  return typeof v === 'object' ? JSON.stringify(v) : String(v);
}

// ---------- start ----------

document.addEventListener('DOMContentLoaded', () => {
  $('signin-form').addEventListener('submit', signin);
  $('signout').addEventListener('click', signout);
  $('refresh').addEventListener('click', () => { state.sampleId = null; load(); });
  $('window').addEventListener('change', () => { state.sampleId = null; load(); });
  if (sessionStorage.getItem(TOKEN_KEY)) load(); else showSignin('');
});
