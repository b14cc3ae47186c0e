// SPDX-License-Identifier: MIT
// The browser half of tests/browser/test_web.sh: drives Debian's chromium
// (playwright-core, no browser download, no network but the daemon's) over
// the page the daemon serves, and checks it against what the CLI printed.
// usage: node test_web.mjs WEB.json (written by test_web.sh)
import { readFileSync } from 'node:fs';
import net from 'node:net';
import { chromium } from 'playwright-core';

const cfg = JSON.parse(readFileSync(process.argv[2], 'utf-8'));
let checks = 0;

function check(cond, what, detail = '') {
	if (!cond)
		throw new Error(`${what}${detail ? ': ' + detail : ''}`);
	checks++;
	console.log(`ok ${checks} - ${what}`);
}

function eq(got, want, what) {
	check(JSON.stringify(got) === JSON.stringify(want), what,
		`got ${JSON.stringify(got)}, expected ${JSON.stringify(want)}`);
}

const group = (s) => s.replace(/\B(?=([0-9]{3})+(?![0-9]))/g, ',');
// a CLI figure ("85152", "2500.5") as the page writes it ("85,152", "2,500.5")
const grouped = (s) => { const [w, f] = s.split('.'); return group(w) + (f ? '.' + f : ''); };

const browser = await chromium.launch({
	executablePath: cfg.chromium,
	headless: true,
	args: ['--no-sandbox', '--disable-gpu', '--no-first-run', '--disable-background-networking',
		'--disable-component-update'],
});

// A page that keeps every response body it receives, and fails on a script error.
async function open(viewport) {
	const context = await browser.newContext({ viewport });
	const page = await context.newPage();
	const bodies = [];
	const pending = [];
	const errors = [];
	page.on('response', (r) => pending.push(r.text().then((text) => bodies.push({ url: r.url(), text }),
		() => {})));
	page.on('pageerror', (e) => errors.push(e.message));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/status of 401/.test(m.text()))
			errors.push(m.text());
	});
	return { context, page, bodies, errors, settle: () => Promise.all(pending) };
}

async function signIn(page, token) {
	await page.fill('#token', token);
	await page.click('#signin-button');
}

async function shot(page, name) {
	const path = `${cfg.artifacts}/${name}.png`;
	await page.screenshot({ path, fullPage: true });
	console.log(`# screenshot ${path}`);
}

// Nothing of the other consortium: its strings in no page text, markup or
// response; its figures in no JSON number of any response, nor in the text.
async function noLeak(page, bodies, who) {
	const html = await page.content();
	const text = await page.evaluate(() => document.body.innerText);
	for (const s of cfg.forbidden.strings) {
		check(!html.includes(s), `${who}: '${s}' is nowhere in the page`);
		for (const b of bodies)
			if (b.text.includes(s))
				check(false, `${who}: '${s}' is in no response`, b.url);
	}
	for (const f of cfg.forbidden.figures)
		check(!text.includes(f), `${who}: the figure ${f} is not shown`);
	const numbers = new Set(cfg.forbidden.numbers);
	const walk = (v, url) => {
		if (typeof v === 'number' && numbers.has(v))
			check(false, `${who}: no response holds ${v}`, url);
		else if (v && typeof v === 'object')
			Object.values(v).forEach((x) => walk(x, url));
	};
	let parsed = 0;
	for (const b of bodies) {
		if (!b.url.includes('/v1/'))
			continue;
		walk(JSON.parse(b.text), b.url);
		parsed++;
	}
	check(parsed >= 5, `${who}: ${parsed} API responses read, none with another consortium's figures`);
}

try {
	// --- a wrong token ---------------------------------------------------------
	const w = await open({ width: 1280, height: 800 });
	const resp = await w.page.goto(cfg.url + '/');
	const h = resp.headers();
	check(h['content-security-policy'].startsWith("default-src 'none'; script-src 'self'"),
		'the page comes with its Content-Security-Policy');
	eq(h['content-type'], 'text/html; charset=utf-8', 'the page is UTF-8 HTML');
	await w.page.waitForSelector('#signin:not([hidden])');
	await signIn(w.page, 'gl_not-a-real-token');
	await w.page.waitForSelector('#signin-error:not([hidden])');
	const msg = await w.page.textContent('#signin-error');
	check(/Sign-in failed: the daemon does not accept this token/.test(msg), 'a wrong token: the sign-in error', msg);
	check(await w.page.isHidden('#views'), 'a wrong token shows no view');
	eq(await w.page.evaluate(() => sessionStorage.getItem('gpuledger.token')), null, 'a wrong token is not kept');
	await shot(w.page, 'web-signin-error-1280x800');
	await w.context.close();

	// --- the consortium lg ---------------------------------------------------------
	const c = await open({ width: 1280, height: 800 });
	await c.page.goto(cfg.url + '/');
	await c.page.waitForSelector('#signin:not([hidden])');
	await signIn(c.page, cfg.tokens.lg);
	await c.page.waitForSelector('#consortium:not([hidden])');
	await c.page.waitForSelector('#availability:not([hidden])');
	check(await c.page.isHidden('#calendars'), 'a consortium sees no pool calendar');
	check(await c.page.isHidden('#admin-quota'), "a consortium sees no one else's quota table");
	check((await c.page.textContent('#consortium-title')).includes('LG AI연구원'), 'the Korean name is shown');

	eq(await c.page.$$eval('#quota-list [data-quota]', (els) => els.map((e) => e.dataset.quota)),
		cfg.quota.map((q) => `${q.consortium}/${q.phase}/${q.gpu}`), 'one quota box per row of gpuledger quota');
	const cliColumn = { granted_gpu_seconds: 'GRANTED', committed_gpu_seconds: 'COMMITTED',
		consumed_gpu_seconds: 'CONSUMED', expired_gpu_seconds: 'EXPIRED',
		available_gpu_seconds: 'AVAILABLE', used_gpu_seconds: 'USED' };
	for (const [i, q] of cfg.quota.entries()) {
		const key = `${q.consortium}/${q.phase}/${q.gpu}`;
		const shown = await c.page.$$eval(`[data-quota="${key}"] dd[data-field]`, (els) =>
			Object.fromEntries(els.map((e) => [e.dataset.field, { s: e.dataset.seconds, t: e.textContent }])));
		for (const [f, col] of Object.entries(cliColumn)) {
			if (q[f] === undefined)
				continue;
			eq(shown[f].s, String(q[f]), `${key} ${f}: the GPU-seconds of --json quota`);
			if (cfg.quota_text[i][col] !== undefined)
				eq(shown[f].t, grouped(cfg.quota_text[i][col]), `${key} ${f}: the GPU-hours gpuledger quota prints`);
		}
		eq(shown.max_gpus.t, q.max_gpus === null ? 'no cap' : String(q.max_gpus), `${key}: the cap`);
		const last = await c.page.getAttribute(`[data-quota="${key}"] [data-burndown]`, 'data-last-seconds');
		eq(last, String(q.available_gpu_seconds), `${key}: the burn-down replayed from the journal ends at available`);
	}

	const rows = await c.page.$$eval('#alloc-table tr[data-alloc]', (trs) => trs.map((tr) => {
		const f = (n) => tr.querySelector(`[data-field="${n}"]`);
		return { id: f('id').textContent, pool: f('pool').textContent, gpus: f('gpus').textContent,
			start: f('start').dataset.iso, end: f('end').dataset.iso, state: f('state').textContent,
			cost: f('cost_gpu_seconds').dataset.seconds };
	}));
	eq(rows, cfg.allocations.map((a) => ({ id: a.id, pool: a.pool, gpus: group(String(a.gpus)), start: a.start,
		end: a.end, state: a.state, cost: String(a.cost_gpu_seconds) })), 'the allocation table is gpuledger allocations');
	eq((await c.page.$$('#alloc-timeline rect.alloc')).length,
		cfg.allocations.filter((a) => a.end > a.start).length, 'the timeline draws each allocation');
	check(new Set(cfg.allocations.map((a) => a.state)).size >= 3, 'allocations in several states');

	for (const [pool, av] of Object.entries(cfg.availability)) {
		const cells = await c.page.$$eval(`.pool-strip[data-pool="${pool}"] rect`, (rs) =>
			rs.map((r) => ({ start: r.dataset.start, free: Number(r.dataset.free), capacity: Number(r.dataset.capacity) })));
		eq(cells, av.slots.map((s) => ({ start: s.start, free: s.free, capacity: s.capacity })),
			`${pool}: free GPUs per day as gpuledger pool availability`);
	}
	check((await c.page.textContent('#journal-table')).includes('초기 배정 (initial)'), 'the journal tail shows the reason');
	check(/[0-9]{4}-[0-9]{2}-[0-9]{2} [0-9]{2}:[0-9]{2} \+09:00/.test(await c.page.textContent('#alloc-table')),
		'times are in the program time zone, with the offset');
	await shot(c.page, 'web-consortium-1280x800');
	await c.page.setViewportSize({ width: 390, height: 844 });
	await c.page.waitForFunction(() => Number(document.body.dataset.chartWidth) < 390 &&
		!document.getElementById('availability').hidden);
	const overflow = await c.page.evaluate(() => document.documentElement.scrollWidth);
	check(overflow <= 390, 'nothing overflows 390 px (wide tables scroll in their box)', `scrollWidth ${overflow}`);
	await shot(c.page, 'web-consortium-390x844');
	await c.settle();
	await noLeak(c.page, c.bodies, 'lg');
	check(c.bodies.every((b) => b.url.startsWith(cfg.url)), 'the page fetched from its own origin only');

	// the token lives in the tab: a reload stays signed in; sign-out forgets it
	await c.page.reload();
	await c.page.waitForSelector('#consortium:not([hidden])');
	check(true, 'a reload stays signed in (sessionStorage)');
	await c.page.click('#sign-out');
	await c.page.waitForSelector('#signin:not([hidden])');
	eq(await c.page.evaluate(() => sessionStorage.getItem('gpuledger.token')), null, 'sign-out forgets the token');
	check(!(await c.page.content()).includes('LG AI연구원'), 'sign-out clears what was shown');
	eq(c.errors, [], 'no script error as lg');
	await c.context.close();

	// --- an admin ------------------------------------------------------------------
	const a = await open({ width: 1280, height: 800 });
	await a.page.goto(cfg.url + '/');
	await a.page.waitForSelector('#signin:not([hidden])');
	await signIn(a.page, cfg.tokens.admin);
	await a.page.waitForSelector('#calendars:not([hidden])');
	await a.page.waitForSelector('#consortium:not([hidden])');
	for (const [pool, cal] of Object.entries(cfg.calendars)) {
		const cells = await a.page.$$eval(`.pool-strip[data-pool="${pool}"][data-kind="booked"] rect`, (rs) =>
			rs.map((r) => ({ start: r.dataset.start, booked: Number(r.dataset.booked), capacity: Number(r.dataset.capacity) })));
		eq(cells, cal.slots.map((s) => ({ start: s.start, booked: s.booked, capacity: s.capacity })),
			`admin: ${pool}'s calendar as gpuledger calendar`);
	}
	check((await a.page.$$('.pool-strip rect.closed')).length > 0, 'admin: days outside a lease are marked');
	const quotaKeys = await a.page.$$eval('#admin-quota-table tr[data-quota]', (trs) => trs.map((t) => t.dataset.quota));
	check(quotaKeys.some((k) => k.startsWith('upstage/')) && quotaKeys.some((k) => k.startsWith('lg/')),
		"admin: every consortium's quota", quotaKeys.join(' '));
	await shot(a.page, 'web-admin-1280x800');
	await a.page.setViewportSize({ width: 390, height: 844 });
	await a.page.waitForFunction(() => Number(document.body.dataset.chartWidth) < 390 &&
		!document.getElementById('consortium').hidden);
	await shot(a.page, 'web-admin-390x844');
	eq(a.errors, [], 'no script error as admin');
	await a.context.close();

	// --- over the Unix socket, as through ssh -L PORT:SOCKET: the caller's Unix role
	const tunnel = net.createServer((conn) => {
		const up = net.connect(cfg.sock);
		conn.pipe(up).pipe(conn);
		up.on('error', () => conn.destroy());
		conn.on('error', () => up.destroy());
	});
	await new Promise((ok) => tunnel.listen(0, '127.0.0.1', ok));
	const u = await open({ width: 1280, height: 800 });
	await u.page.goto(`http://127.0.0.1:${tunnel.address().port}/`);
	await u.page.waitForSelector('#calendars:not([hidden])');
	check(await u.page.isHidden('#signin'), 'over the Unix socket: no token asked');
	check((await u.page.textContent('#who-text')).includes('admin (Unix user)'), 'over the Unix socket: the Unix role');
	check(await u.page.isHidden('#sign-out'), 'over the Unix socket: nothing to sign out of');
	eq(u.errors, [], 'no script error over the Unix socket');
	await u.context.close();
	tunnel.close();
	console.log(`PASS test_web.mjs (${checks} checks)`);
} finally {
	await browser.close();
}
