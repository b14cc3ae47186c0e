// SPDX-License-Identifier: MIT
// gpuledger's web view: reads the daemon's JSON API as the signed-in caller
// and draws it. Nothing here computes a balance the daemon does not send,
// except the burn-down, which replays the journal's deltas. Amounts stay
// exact: integer GPU-seconds (BigInt where JSON numbers would round),
// shown in GPU-hours exactly as the CLI prints them, with thousands
// separators. Every text goes in through textContent, never as markup.
'use strict';

const TOKEN_KEY = 'gpuledger.token';
const SVG = 'http://www.w3.org/2000/svg';
const DAY = 86400000;

const $ = (id) => document.getElementById(id);

// --- the API ---------------------------------------------------------------

class ApiError extends Error {
	constructor(status, code, message) {
		super(message);
		this.status = status;
		this.code = code;
	}
}

// Integers beyond 2^53 stay exact as BigInt (the reviver sees the source text).
function parseJSON(text) {
	return JSON.parse(text, (key, value, ctx) =>
		typeof value === 'number' && !Number.isSafeInteger(value) &&
		ctx && /^-?[0-9]+$/.test(ctx.source) ? BigInt(ctx.source) : value);
}

async function api(path, token = sessionStorage.getItem(TOKEN_KEY)) {
	const headers = { Accept: 'application/json' };
	if (token)
		headers.Authorization = 'Bearer ' + token;
	const res = await fetch(path, { headers, cache: 'no-store', credentials: 'omit' });
	const text = await res.text();
	let body = null;
	try {
		body = parseJSON(text);
	} catch (e) {
		body = null;
	}
	if (!res.ok) {
		const err = body && body.error ? body.error : {};
		throw new ApiError(res.status, err.code || 'http_' + res.status,
			err.message || res.statusText);
	}
	return body;
}

function query(params) {
	const parts = [];
	for (const [k, v] of Object.entries(params))
		if (v !== null && v !== undefined)
			parts.push(encodeURIComponent(k) + '=' + encodeURIComponent(v));
	return parts.length ? '?' + parts.join('&') : '';
}

// --- formatting ------------------------------------------------------------

const big = (v) => (typeof v === 'bigint' ? v : BigInt(v));
const group = (digits) => digits.replace(/\B(?=([0-9]{3})+(?![0-9]))/g, ',');

// A count with thousands separators.
function num(v) {
	if (v === null || v === undefined)
		return '–';
	const s = big(v).toString();
	return s[0] === '-' ? '-' + group(s.slice(1)) : group(s);
}

// GPU-seconds as GPU-hours: gpu_hours_format() of daemon/util.c (up to four
// decimals, toward zero, trailing zeros dropped), grouped.
function hours(seconds, signed = false) {
	if (seconds === null || seconds === undefined)
		return '–';
	const s = big(seconds);
	const neg = s < 0n;
	const mag = neg ? -s : s;
	const whole = mag / 3600n, rem = mag % 3600n, frac = rem * 10000n / 3600n;
	let out;
	if (frac === 0n)
		out = (neg && (whole || rem) ? '-' : '') + group(whole.toString());
	else
		out = (neg ? '-' : '') + group(whole.toString()) + '.' +
			frac.toString().padStart(4, '0').replace(/0+$/, '');
	return signed && s > 0n ? '+' + out : out;
}

// The program's offset, from the first instant the daemon wrote.
let tzOffsetMin = 0;
let tzText = '+00:00';
function learnOffset(iso) {
	const m = /([+-])([0-9]{2}):([0-9]{2})$/.exec(iso || '');
	if (m) {
		tzOffsetMin = (m[1] === '-' ? -1 : 1) * (Number(m[2]) * 60 + Number(m[3]));
		tzText = m[0];
	} else if (/Z$/.test(iso || '')) {
		tzOffsetMin = 0;
		tzText = '+00:00';
	}
}

// "2025-09-02T00:00:00+09:00" -> "2025-09-02 00:00 +09:00" (seconds when not 0).
function when(iso) {
	if (!iso)
		return '–';
	const m = /^([0-9]{4}-[0-9]{2}-[0-9]{2})T([0-9]{2}:[0-9]{2})(:[0-9]{2})?(.*)$/.exec(iso);
	if (!m)
		return iso;
	const sec = m[3] && m[3] !== ':00' ? m[3] : '';
	const off = m[4] === 'Z' ? '+00:00' : m[4];
	return `${m[1]} ${m[2]}${sec} ${off}`;
}

const ms = (iso) => Date.parse(iso);

// An instant as the program's local time: "2025-09-02 00:00 +09:00".
function local(t, dateOnly = false) {
	const s = new Date(t + tzOffsetMin * 60000).toISOString();
	return dateOnly ? s.slice(0, 10) : s.slice(0, 10) + ' ' + s.slice(11, 16) + ' ' + tzText;
}

// Midnight of the program's day holding t, as an instant.
function localMidnight(t) {
	const off = tzOffsetMin * 60000;
	return Math.floor((t + off) / DAY) * DAY - off;
}

// An instant for a query: the program's local time with its offset.
function queryTime(t) {
	const s = new Date(t + tzOffsetMin * 60000).toISOString();
	return s.slice(0, 19) + tzText;
}

// --- DOM helpers -------------------------------------------------------------

function el(tag, attrs = {}, ...children) {
	const e = document.createElement(tag);
	for (const [k, v] of Object.entries(attrs)) {
		if (v === null || v === undefined)
			continue;
		if (k === 'class')
			e.className = v;
		else
			e.setAttribute(k, v);
	}
	for (const c of children)
		if (c !== null && c !== undefined)
			e.append(c instanceof Node ? c : String(c));
	return e;
}

function svg(tag, attrs = {}, ...children) {
	const e = document.createElementNS(SVG, tag);
	for (const [k, v] of Object.entries(attrs))
		if (v !== null && v !== undefined)
			e.setAttribute(k, String(v));
	for (const c of children)
		if (c !== null && c !== undefined)
			e.append(c instanceof Node ? c : String(c));
	return e;
}

const tip = (text) => svg('title', {}, text);

// A figure cell: GPU-hours as text, the exact GPU-seconds in data-seconds.
function hoursCell(tag, seconds, field, signed = false) {
	const attrs = { class: 'num' };
	if (field)
		attrs['data-field'] = field;
	if (seconds !== null && seconds !== undefined)
		attrs['data-seconds'] = big(seconds).toString();
	return el(tag, attrs, hours(seconds, signed));
}

function table(t, head, rows) {
	t.replaceChildren(el('thead', {}, el('tr', {}, ...head.map((h) =>
		el('th', { class: h.num ? 'num' : null, scope: 'col' }, h.label || h)))));
	const body = el('tbody');
	for (const r of rows)
		body.append(r);
	if (rows.length === 0)
		body.append(el('tr', {}, el('td', { colspan: head.length, class: 'empty' }, 'none')));
	t.append(body);
}

function show(id, on) {
	$(id).hidden = !on;
}

// Charts are drawn at the width they get, so that their text stays readable
// on a phone; a resize that changes it much draws them again.
function chartWidth() {
	return Math.min(1180, Math.max(320, document.documentElement.clientWidth - 56));
}

// --- state -------------------------------------------------------------------

let session = null;	// {status, program, now}
let loadSeq = 0;	// a newer load makes an older one's answers moot

function clearViews() {
	for (const id of ['admin-quota-table', 'budget-table', 'calendar-list', 'phase-table',
		'quota-list', 'alloc-timeline', 'alloc-table', 'journal-table', 'availability-list',
		'picker'])
		$(id).replaceChildren();
	for (const id of ['consortium-title', 'consortium-status', 'consortium-members',
		'journal-note', 'who-text', 'clock-text', 'program-name'])
		$(id).textContent = '';
	for (const id of ['views', 'admin-quota', 'budget', 'calendars', 'consortium',
		'availability', 'whoami', 'fatal'])
		show(id, false);
	session = null;
}

function showSignIn(message) {
	clearViews();
	show('signin', true);
	const err = $('signin-error');
	err.textContent = message || '';
	err.hidden = !message;
	$('token').value = '';
	$('token').focus();
}

function fatal(e) {
	const f = $('fatal');
	f.textContent = `The daemon answered ${e.status || ''} ${e.code || ''}: ${e.message}`;
	f.hidden = false;
}

// --- sign-in -------------------------------------------------------------------

function refusal(e) {
	if (e.status === 401)
		return 'Sign-in failed: the daemon does not accept this token. ' +
			'Check that you pasted the whole token, and that it is still in the ' +
			`daemon's configuration. (${e.code}: ${e.message})`;
	return `Sign-in failed: ${e.status || ''} ${e.code}: ${e.message}`;
}

async function signIn(ev) {
	ev.preventDefault();
	const token = $('token').value.trim();
	const err = $('signin-error');
	if (!token) {
		err.textContent = 'Paste a token first.';
		err.hidden = false;
		return;
	}
	$('signin-button').disabled = true;
	try {
		const status = await api('/v1/status', token);
		sessionStorage.setItem(TOKEN_KEY, token);
		$('token').value = '';
		show('signin', false);
		await load(status);
	} catch (e) {
		sessionStorage.removeItem(TOKEN_KEY);
		if (e instanceof ApiError) {
			err.textContent = refusal(e);
			err.hidden = false;
		} else {
			err.textContent = 'Sign-in failed: the daemon could not be reached (' + e.message + ').';
			err.hidden = false;
		}
	} finally {
		$('signin-button').disabled = false;
	}
}

function signOut() {
	sessionStorage.removeItem(TOKEN_KEY);
	loadSeq++;
	showSignIn('');
}

// --- loading -------------------------------------------------------------------

async function load(status) {
	const seq = ++loadSeq;
	const program = await api('/v1/program');
	if (seq !== loadSeq)
		return;
	clearViews();
	learnOffset(status.clock);
	session = { status, program, now: ms(status.clock) };
	const you = status.you || {};
	const token = sessionStorage.getItem(TOKEN_KEY);
	$('program-name').textContent = program.program.name;
	$('tz-text').textContent = `${program.program.timezone}, ${tzText}`;
	$('who-text').textContent = you.role === 'consortium'
		? `${consortiumName(you.consortium)} (consortium)`
		: `${you.role}${token ? '' : ' (Unix user)'}`;
	$('clock-text').textContent = `now ${when(status.clock)}` +
		(status.clock_mode === 'simulated' ? ' (simulated clock)' : '');
	document.body.dataset.chartWidth = chartWidth();
	show('sign-out', Boolean(token));
	show('whoami', true);
	show('signin', false);
	show('views', true);

	if (you.role === 'consortium') {
		await consortiumView(seq, you.consortium, false);
		await availabilityView(seq);
	} else {
		const picker = $('picker');
		for (const k of program.consortia)
			picker.append(el('option', { value: k.id }, `${k.name} (${k.id})`));
		show('picker-label', program.consortia.length > 0);
		await Promise.all([adminQuota(seq), budgetView(seq), calendarsView(seq)]);
		if (program.consortia.length)
			await consortiumView(seq, program.consortia[0].id, true);
	}
}

async function reload() {
	try {
		const status = await api('/v1/status');
		await load(status);
	} catch (e) {
		if (e instanceof ApiError && e.status === 401)
			showSignIn(sessionStorage.getItem(TOKEN_KEY) ? refusal(e) : '');
		else
			fatal(e);
	}
}

function consortiumName(id) {
	const k = session && session.program.consortia.find((c) => c.id === id);
	return k ? k.name : id;
}

// --- a consortium --------------------------------------------------------------

async function journalAll(scope) {
	const out = [];
	let since = 0;
	for (;;) {
		const page = await api('/v1/journal' + query({ since, limit: 10000, ...scope }));
		out.push(...page.entries);
		if (!page.later || page.entries.length === 0)
			return out;
		since = page.entries[page.entries.length - 1].seq;
	}
}

async function consortiumView(seq, id, scoped) {
	const scope = scoped ? { consortium: id } : {};
	const [quota, allocs, tail, all] = await Promise.all([
		api('/v1/quota' + query(scope)),
		api('/v1/allocations' + query(scope)),
		api('/v1/journal' + query({ limit: 20, ...scope })),
		journalAll(scope),
	]);
	if (seq !== loadSeq)
		return;
	const k = session.program.consortia.find((c) => c.id === id);
	$('picker').value = id;
	$('consortium-title').textContent = k ? `${k.name} (${k.id})` : id;
	$('consortium-status').replaceChildren(...statusLine(k));
	$('consortium-members').textContent = k
		? `Lead: ${k.lead}` + (k.members && k.members.length ? ` · Members: ${k.members.join(', ')}` : '')
		: '';
	phaseTable();
	quotaList(quota.quota, all);
	allocTimeline(allocs.allocations);
	allocTable(allocs.allocations);
	journalTable(tail.entries);
	$('journal-note').textContent = tail.earlier
		? `the last ${num(tail.entries.length)} of ${num(tail.earlier + tail.entries.length)} entries`
		: `${num(tail.entries.length)} entries`;
	show('consortium', true);
}

function statusLine(k) {
	if (!k)
		return [];
	const parts = [el('span', { class: 'badge ' + k.status, 'data-status': k.status }, k.status)];
	if (k.since)
		parts.push(` since ${when(k.since)}`);
	if (k.status === 'active' && k.eliminated_from)
		parts.push(' · ', el('span', { class: 'warn' }, `eliminated from ${when(k.eliminated_from)}`));
	if (k.designation_until)
		parts.push(` · designation until ${when(k.designation_until)}`);
	if (k.joined)
		parts.push(` · joined ${when(k.joined)}`);
	return parts;
}

function currentPhase(t) {
	return session.program.phases.find((p) => ms(p.start) <= t && t < ms(p.end)) || null;
}

function phaseTable() {
	const now = session.now;
	table($('phase-table'), ['Phase', 'Name', 'Start', 'End', ''],
		session.program.phases.map((p) => {
			const state = now < ms(p.start) ? 'ahead' : now < ms(p.end) ? 'current' : 'over';
			return el('tr', { class: state === 'current' ? 'current' : null },
				el('td', {}, p.id), el('td', {}, p.name), el('td', {}, when(p.start)),
				el('td', {}, when(p.end)), el('td', {}, state));
		}));
}

const QUOTA_FIELDS = [
	['granted_gpu_seconds', 'granted'],
	['committed_gpu_seconds', 'committed'],
	['consumed_gpu_seconds', 'consumed'],
	['expired_gpu_seconds', 'expired'],
	['available_gpu_seconds', 'available'],
];

function quotaList(rows, journal) {
	const list = $('quota-list');
	list.replaceChildren();
	if (rows.length === 0)
		list.append(el('p', { class: 'empty' }, 'No quota granted yet.'));
	for (const q of rows) {
		const phase = session.program.phases.find((p) => p.id === q.phase);
		const box = el('div', { class: 'quota', 'data-quota': `${q.consortium}/${q.phase}/${q.gpu}` });
		box.append(el('h4', {}, `${q.phase}${phase ? ' · ' + phase.name : ''} · ${q.gpu}`));
		box.append(quotaBar(q));
		const dl = el('dl', { class: 'figures' });
		for (const [f, label] of QUOTA_FIELDS)
			dl.append(el('div', {}, el('dt', {}, label), hoursCell('dd', q[f], f)));
		if (q.used_gpu_seconds !== undefined)
			dl.append(el('div', {}, el('dt', {}, 'used (metered)'),
				hoursCell('dd', q.used_gpu_seconds, 'used_gpu_seconds')));
		dl.append(el('div', {}, el('dt', {}, 'max GPUs'),
			el('dd', { class: 'num', 'data-field': 'max_gpus' },
				q.max_gpus === null ? 'no cap' : num(q.max_gpus))));
		box.append(dl);
		if (phase)
			box.append(burnDown(q, phase, journal));
		list.append(box);
	}
}

// consumed | committed, not yet used | available, over granted minus expired.
function quotaBar(q) {
	const consumed = big(q.consumed_gpu_seconds);
	const pending = big(q.committed_gpu_seconds) - consumed;
	const avail = big(q.available_gpu_seconds);
	const total = consumed + (pending > 0n ? pending : 0n) + (avail > 0n ? avail : 0n);
	const W = 1000;
	const bar = svg('svg', { class: 'bar', viewBox: `0 0 ${W} 20`, preserveAspectRatio: 'none',
		role: 'img', 'aria-label': 'quota bar' });
	let x = 0;
	const parts = [['consumed', consumed, 'consumed'], ['pending', pending, 'committed, not yet used'],
		['available', avail, 'available']];
	for (const [cls, v, label] of parts) {
		if (total <= 0n || v <= 0n)
			continue;
		const w = Number(v * BigInt(W) / total);
		bar.append(svg('rect', { class: cls, x, y: 0, width: Math.max(w, 1), height: 20 },
			tip(`${label}: ${hours(v)} GPU-hours`)));
		x += w;
	}
	if (total <= 0n)
		bar.append(svg('rect', { class: 'none', x: 0, y: 0, width: W, height: 20 }));
	const legend = el('p', { class: 'legend' },
		el('span', { class: 'key consumed' }), `consumed ${hours(consumed)} · `,
		el('span', { class: 'key pending' }), `committed, not yet used ${hours(pending)} · `,
		el('span', { class: 'key available' }), `available ${hours(avail)} GPU-hours`);
	return el('div', { class: 'bar-box' }, bar, legend);
}

// Available GPU-hours of (phase, gpu) after each journal entry, from the phase's
// start to its end: the deltas replayed, so its last point is the quota's.
function burnDown(q, phase, journal) {
	const start = ms(phase.start), end = ms(phase.end), now = session.now;
	const pts = [];
	let avail = 0n;
	for (const e of journal) {
		if (e.consortium !== q.consortium || e.phase !== q.phase || e.gpu !== q.gpu)
			continue;
		avail += big(e.granted_delta_gpu_seconds || 0) - big(e.committed_delta_gpu_seconds || 0) -
			big(e.expired_delta_gpu_seconds || 0);
		pts.push([Math.min(Math.max(ms(e.time), start), end), avail]);
	}
	const W = Math.min(640, chartWidth()), H = 140, L = 70, R = 10, T = 10, B = 24;
	const box = el('div', { class: 'burn', 'data-burndown': `${q.phase}/${q.gpu}`,
		'data-last-seconds': avail.toString() });
	const top = pts.reduce((m, p) => (p[1] > m ? p[1] : m), 1n);
	const xs = (t) => L + (W - L - R) * (t - start) / Math.max(end - start, 1);
	const ys = (v) => T + (H - T - B) * (1 - Number(v) / Number(top));
	const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart', role: 'img',
		'aria-label': `available GPU-hours of ${q.phase} ${q.gpu} toward the phase end` });
	g.append(svg('line', { class: 'axis', x1: L, y1: H - B, x2: W - R, y2: H - B }));
	g.append(svg('line', { class: 'axis', x1: L, y1: T, x2: L, y2: H - B }));
	g.append(svg('text', { class: 'tick', x: L - 6, y: T + 8, 'text-anchor': 'end' }, hours(top)));
	g.append(svg('text', { class: 'tick', x: L - 6, y: H - B, 'text-anchor': 'end' }, '0'));
	g.append(svg('text', { class: 'tick', x: L, y: H - 6 }, local(start, true)));
	g.append(svg('text', { class: 'tick', x: W - R, y: H - 6, 'text-anchor': 'end' },
		`end ${local(end, true)}`));
	if (pts.length) {
		let d = `M${xs(start).toFixed(1)},${ys(0n).toFixed(1)}`;
		for (const [t, v] of pts)
			d += `H${xs(t).toFixed(1)}V${ys(v).toFixed(1)}`;
		const last = Math.min(Math.max(now, pts[pts.length - 1][0]), end);
		d += `H${xs(last).toFixed(1)}`;
		g.append(svg('path', { class: 'line', d }, tip(`available now: ${hours(avail)} GPU-hours`)));
	}
	if (now >= start && now <= end) {
		g.append(svg('line', { class: 'now', x1: xs(now), y1: T, x2: xs(now), y2: H - B }));
		g.append(svg('text', { class: 'tick', x: xs(now) + 3, y: T + 8 }, 'now'));
	}
	box.append(el('p', { class: 'caption' },
		`Available GPU-hours, ${phase.id}, toward the phase end (${when(phase.end)}): ` +
		`${hours(avail)} now`), g);
	return box;
}

const STATE_ORDER = ['active', 'reserved', 'completed', 'released', 'revoked', 'cancelled'];

function allocTable(allocs) {
	table($('alloc-table'), ['Id', 'Pool', 'GPU', { label: 'GPUs', num: true }, 'Start', 'End',
		'State', { label: 'Cost (GPU-h)', num: true }],
	allocs.map((a) => el('tr', { 'data-alloc': a.id },
		el('td', { 'data-field': 'id' }, a.id), el('td', { 'data-field': 'pool' }, a.pool),
		el('td', {}, a.gpu), el('td', { class: 'num', 'data-field': 'gpus' }, num(a.gpus)),
		el('td', { 'data-field': 'start', 'data-iso': a.start }, when(a.start)),
		el('td', { 'data-field': 'end', 'data-iso': a.end }, when(a.end)),
		el('td', { 'data-field': 'state' }, el('span', { class: 'badge ' + a.state }, a.state)),
		hoursCell('td', a.cost_gpu_seconds, 'cost_gpu_seconds'))));
}

function allocTimeline(allocs) {
	const box = $('alloc-timeline');
	box.replaceChildren();
	const shown = allocs.filter((a) => ms(a.end) > ms(a.start));
	if (shown.length === 0)
		return;
	const t0 = Math.min(...shown.map((a) => ms(a.start)), session.now);
	const t1 = Math.max(...shown.map((a) => ms(a.end)), session.now + DAY);
	const W = chartWidth(), L = 80, R = 10, row = 18, T = 6, B = 22;
	const H = T + row * shown.length + B;
	const xs = (t) => L + (W - L - R) * (t - t0) / Math.max(t1 - t0, 1);
	const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, class: 'chart timeline', role: 'img',
		'aria-label': 'allocations over time' });
	shown.slice().sort((a, b) => ms(a.start) - ms(b.start)).forEach((a, i) => {
		const y = T + i * row;
		g.append(svg('text', { class: 'tick', x: L - 6, y: y + 12, 'text-anchor': 'end' }, a.id));
		g.append(svg('rect', { class: 'alloc ' + a.state, x: xs(ms(a.start)), y: y + 2,
			width: Math.max(xs(ms(a.end)) - xs(ms(a.start)), 2), height: row - 4, rx: 2 },
		tip(`${a.id}: ${num(a.gpus)} × ${a.gpu} on ${a.pool}, ${when(a.start)} – ${when(a.end)}, ` +
			`${a.state}, ${hours(a.cost_gpu_seconds)} GPU-hours`)));
	});
	const yb = H - B;
	g.append(svg('line', { class: 'axis', x1: L, y1: yb, x2: W - R, y2: yb }));
	const narrow = W < 600;	// two full instants would overlap
	g.append(svg('text', { class: 'tick', x: L, y: H - 6 }, local(t0, narrow)));
	g.append(svg('text', { class: 'tick', x: W - R, y: H - 6, 'text-anchor': 'end' }, local(t1, narrow)));
	if (session.now >= t0 && session.now <= t1)
		g.append(svg('line', { class: 'now', x1: xs(session.now), y1: T, x2: xs(session.now), y2: yb }));
	const legend = el('p', { class: 'legend' });
	for (const s of STATE_ORDER)
		if (shown.some((a) => a.state === s))
			legend.append(el('span', { class: 'key alloc ' + s }), s + ' ');
	box.append(g, legend);
}

function journalTable(entries) {
	table($('journal-table'), [{ label: 'Seq', num: true }, 'Time', 'Kind', 'Phase', 'GPU',
		'Allocation', { label: 'Granted Δ', num: true }, { label: 'Committed Δ', num: true },
		{ label: 'Expired Δ', num: true }, 'Reason'],
	entries.slice().reverse().map((e) => el('tr', { 'data-seq': e.seq },
		el('td', { class: 'num' }, num(e.seq)), el('td', {}, when(e.time)),
		el('td', {}, e.kind), el('td', {}, e.phase || '–'), el('td', {}, e.gpu || '–'),
		el('td', {}, e.allocation || '–'),
		hoursCell('td', e.granted_delta_gpu_seconds, 'granted_delta_gpu_seconds', true),
		hoursCell('td', e.committed_delta_gpu_seconds, 'committed_delta_gpu_seconds', true),
		hoursCell('td', e.expired_delta_gpu_seconds, 'expired_delta_gpu_seconds', true),
		el('td', { class: 'reason' }, e.reason || ''))));
}

// --- administrators and operators --------------------------------------------

async function adminQuota(seq) {
	const q = await api('/v1/quota');
	if (seq !== loadSeq)
		return;
	table($('admin-quota-table'), ['Consortium', 'Phase', 'GPU',
		...QUOTA_FIELDS.map(([, l]) => ({ label: l, num: true })), { label: 'max GPUs', num: true }, ''],
	q.quota.map((r) => el('tr', { 'data-quota': `${r.consortium}/${r.phase}/${r.gpu}` },
		el('td', {}, consortiumName(r.consortium)), el('td', {}, r.phase), el('td', {}, r.gpu),
		...QUOTA_FIELDS.map(([f]) => hoursCell('td', r[f], f)),
		el('td', { class: 'num' }, r.max_gpus === null ? '–' : num(r.max_gpus)),
		el('td', { class: 'mini' }, quotaBar(r).firstChild))));
	show('admin-quota', true);
}

async function budgetView(seq) {
	let b;
	try {
		b = await api('/v1/budget');
	} catch (e) {
		if (e instanceof ApiError && (e.status === 404 || e.status === 403))
			return;	// a daemon without the route, or a role without it
		throw e;
	}
	if (seq !== loadSeq)
		return;
	const F = [['procured_gpu_seconds', 'procured'], ['granted_gpu_seconds', 'granted'],
		['committed_gpu_seconds', 'committed'], ['reserve_gpu_seconds', 'reserve']];
	table($('budget-table'), ['Phase', 'GPU', ...F.map(([, l]) => ({ label: l, num: true }))],
		b.budget.map((r) => el('tr', { 'data-budget': `${r.phase}/${r.gpu}` },
			el('td', {}, r.phase), el('td', {}, r.gpu), ...F.map(([f]) => hoursCell('td', r[f], f)))));
	show('budget', true);
}

// The window the calendars show: the current phase (or the next one), by day.
function calendarWindow() {
	const now = session.now;
	const phases = session.program.phases;
	const p = currentPhase(now) || phases.find((x) => ms(x.start) > now) || phases[phases.length - 1];
	if (!p)
		return { from: localMidnight(now), to: localMidnight(now) + 14 * DAY, label: 'next 14 days' };
	return { from: ms(p.start), to: ms(p.end), label: `${p.id} (${p.name})` };
}

async function calendarsView(seq) {
	const w = calendarWindow();
	const pools = session.program.pools;
	const cals = await Promise.all(pools.map((p) => api(`/v1/pools/${encodeURIComponent(p.id)}/calendar` +
		query({ from: queryTime(w.from), to: queryTime(w.to), step: 86400 }))));
	if (seq !== loadSeq)
		return;
	const list = $('calendar-list');
	list.replaceChildren(el('p', { class: 'caption' }, `Window: ${w.label}, ${local(w.from)} – ${local(w.to)}`));
	pools.forEach((p, i) => list.append(heatStrip(p, cals[i], 'booked')));
	show('calendars', true);
}

async function availabilityView(seq) {
	const from = localMidnight(session.now), to = from + 14 * DAY;
	const pools = session.program.pools;
	const av = await Promise.all(pools.map((p) => api(`/v1/pools/${encodeURIComponent(p.id)}/availability` +
		query({ from: queryTime(from), to: queryTime(to), step: 86400 }))));
	if (seq !== loadSeq)
		return;
	const list = $('availability-list');
	list.replaceChildren();
	pools.forEach((p, i) => list.append(heatStrip(p, av[i], 'free')));
	show('availability', true);
}

function leaseText(p) {
	const parts = [];
	if (p.available_from)
		parts.push(`from ${when(p.available_from)}`);
	if (p.available_until)
		parts.push(`until ${when(p.available_until)}`);
	return parts.length ? `lease ${parts.join(' ')}` : 'no lease end';
}

// One row of cells per slot: with kind 'booked' the share of capacity booked,
// with 'free' the share free; a slot without capacity (outside a lease) is grey.
function heatStrip(p, cal, kind) {
	const n = cal.slots.length;
	const W = 900, H = 26, cw = W / Math.max(n, 1);
	const g = svg('svg', { viewBox: `0 0 ${W} ${H}`, preserveAspectRatio: 'none', class: 'strip',
		role: 'img', 'aria-label': `${p.id}: GPUs ${kind} per day` });
	let peak = 0;
	cal.slots.forEach((s, i) => {
		const v = s[kind];
		peak = Math.max(peak, kind === 'booked' ? v : 0);
		let cls = 'cell', share = 0;
		if (s.capacity <= 0)
			cls += ' closed';
		else {
			share = Math.min(1, v / s.capacity);
			cls += ' l' + Math.min(5, Math.ceil(share * 5));
		}
		g.append(svg('rect', { class: cls + ' ' + kind, x: (i * cw).toFixed(2), y: 0,
			width: (cw + 0.3).toFixed(2), height: H, 'data-start': s.start, [`data-${kind}`]: v,
			'data-capacity': s.capacity },
		tip(`${when(s.start)}: ${s.capacity <= 0 ? 'no capacity (outside the lease)'
			: `${num(v)} of ${num(s.capacity)} GPUs ${kind}`}`)));
	});
	const head = el('div', { class: 'strip-head' },
		el('strong', {}, p.id), ` ${p.provider} · ${num(p.gpus)} × ${p.gpu}` +
		(p.gpus_per_node ? ` · nodes of ${p.gpus_per_node}` : '') + ` · ${leaseText(p)}` +
		(kind === 'booked' ? ` · peak ${num(peak)} booked` : ''));
	const axis = el('div', { class: 'strip-axis' },
		el('span', {}, n ? when(cal.slots[0].start) : ''), el('span', {}, n ? when(cal.slots[n - 1].end) : ''));
	return el('div', { class: 'pool-strip', 'data-pool': p.id, 'data-kind': kind }, head, g, axis);
}

// --- start -----------------------------------------------------------------------

document.addEventListener('DOMContentLoaded', () => {
	$('signin-form').addEventListener('submit', signIn);
	$('sign-out').addEventListener('click', signOut);
	$('refresh').addEventListener('click', reload);
	$('picker').addEventListener('change', async (ev) => {
		try {
			await consortiumView(loadSeq, ev.target.value, true);
		} catch (e) {
			fatal(e);
		}
	});
	let resizing = null;
	window.addEventListener('resize', () => {
		clearTimeout(resizing);
		resizing = setTimeout(() => {
			const drawn = Number(document.body.dataset.chartWidth || 0);
			if (session && Math.abs(chartWidth() - drawn) > drawn * 0.15)
				reload();
		}, 200);
	});
	reload();
});
