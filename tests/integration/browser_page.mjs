// The status page in headless Chromium against the real gateway: initial
// state (known and unknown submission), a live change after a publish,
// numbers and bar against the API's summary after validation batches, the
// list page, keyboard access, and a screenshot kept in tests/artifacts/.
import { execFile } from 'node:child_process';
import crypto from 'node:crypto';
import fs from 'node:fs';
import path from 'node:path';
import { promisify } from 'node:util';
import {
	Gateway, Runner, artifact, assert, assertEq, closeGatewayAndBrowser, freePort,
	openGatewayAndBrowser, tmpDir, waitFor
} from './browserlib.mjs';

const here = path.dirname(new URL(import.meta.url).pathname);
const WAIT = 10000;   // generous deadlines: this machine is shared and noisy
const t = new Runner('browser_page');

async function openPage(ctx, key, viewport) {
	const page = await ctx.browser.newPage(viewport ? { viewport } : undefined);
	page.on('pageerror', (e) => ctx.pageErrors.push(`${key}: ${e}`));
	await page.goto(`${ctx.gw.url}/submissions/${key}`);
	await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: WAIT });
	return page;
}

const text = (page, id) => page.textContent(`[data-testid=${id}]`);

async function waitSeq(page, seq) {
	await page.waitForFunction((s) => document.querySelector('[data-testid=seq]').textContent === String(s),
		seq, { timeout: WAIT });
}

function records(kind, n) {
	return Array.from({ length: n }, (_, i) => ({ kind, name: `${kind}-${i}` }));
}

// results for names [from, to): a fixed mix of Pass/Warning/Error
function results(kind, from, to) {
	const out = [];
	for (let i = from; i < to; i++) {
		const r = i % 7 === 3 ? 'Error' : i % 5 === 1 ? 'Warning' : 'Pass';
		const messages = r === 'Error' ? [{ text: `${kind} id missing`, column: 'id' }]
			: r === 'Warning' ? [{ text: 'Breed not in ontology', column: 'breed' }] : [];
		out.push({ kind, name: `${kind}-${i}`, status: r, messages });
	}
	return out;
}

t.test('unknown submission: the page waits for its first event', async (ctx) => {
	const page = await openPage(ctx, 'nobody-yet');
	assertEq(await text(page, 'key'), 'nobody-yet', 'key');
	assertEq(await page.getAttribute('[data-testid=status]', 'data-status'), '', 'no status');
	assertEq((await text(page, 'status')).trim(), 'No events yet', 'badge text');
	assert(await page.isVisible('[data-testid=timeline-empty]'), 'empty timeline is said');
	assert(await page.isVisible('[data-testid=summary-empty]'), 'no records is said');
	assertEq(await text(page, 'seq'), '0', 'seq');
	// and the first event arrives live
	await ctx.gw.publish({ type: 'status', submission: 'nobody-yet', status: 'waiting', notification: 'first' });
	await page.waitForSelector('[data-testid=status][data-status=Waiting]', { timeout: WAIT });
	assertEq(await text(page, 'notification'), 'first', 'notification');
	await page.close();
});

t.test('existing submission: initial state and back-filled timeline', async (ctx) => {
	const gw = ctx.gw;
	await gw.publish({ type: 'status', submission: 'known', status: 'Waiting', notification: 'queued' });
	await gw.publish({ type: 'records', submission: 'known', records: records('animal', 4) });
	await gw.publish({ type: 'status', submission: 'known', status: 'Loaded', notification: 'Data <b>loaded</b>' });
	const page = await openPage(ctx, 'known');
	assertEq(await page.getAttribute('[data-testid=status]', 'data-status'), 'Loaded', 'status');
	assertEq((await text(page, 'status')).trim(), 'Loaded', 'status text shown, not colour alone');
	// text, never markup
	assertEq(await text(page, 'notification'), 'Data <b>loaded</b>', 'notification as text');
	assertEq(await page.locator('[data-testid=notification] b').count(), 0, 'no injected markup');
	assertEq(await text(page, 'seq'), '3', 'seq');
	await page.waitForFunction(() => document.querySelectorAll('[data-testid=timeline] li').length === 3,
		null, { timeout: WAIT });
	const seqs = await page.$$eval('[data-testid=timeline] li', (li) => li.map((e) => +e.dataset.seq));
	assertEq(seqs, [3, 2, 1], 'timeline newest first');
	const dt = await page.getAttribute('[data-testid=timeline] li time', 'datetime');
	assert(!isNaN(Date.parse(dt)), `time datetime is ISO 8601: ${dt}`);
	assertEq(await text(page, 'row-animal'), 'animal400040', 'numbers row (all pass warning error unknown issues)');
	await page.close();
});

t.test('the page changes after a publish (live)', async (ctx) => {
	const page = await openPage(ctx, 'live-1');
	const lat = [];
	for (const [st, want] of [['Loaded', 'Loaded'], ['need_revision', 'Need Revision'], ['READY', 'Ready'],
		['Submitted', 'Submitted'], ['Error', 'Error'], ['Completed', 'Completed']]) {
		const t0 = Date.now();
		const r = await ctx.gw.publish({ type: 'status', submission: 'live-1', status: st, notification: `now ${want}` });
		await page.waitForSelector(`[data-testid=status][data-status="${want}"]`, { timeout: WAIT });
		lat.push(Date.now() - t0);
		assertEq(await text(page, 'notification'), `now ${want}`, 'notification');
		assertEq(await text(page, 'seq'), String(r.seq), 'seq');
		const cls = await page.getAttribute('[data-testid=status]', 'class');
		assert(cls.includes('badge-' + want.toLowerCase().replace(' ', '-')), `badge class ${cls}`);
		const top = await page.getAttribute('[data-testid=timeline] li', 'data-seq');
		assertEq(+top, r.seq, 'the newest timeline entry');
	}
	console.log(`      observed publish-to-page latency (ms): ${lat.join(', ')}`);
	await page.close();
});

t.test('numbers and bar match the summary after validation batches', async (ctx) => {
	const gw = ctx.gw, key = 'valid-1';
	await gw.publish({ type: 'status', submission: key, status: 'Loaded', notification: 'loaded' });
	await gw.publish({ type: 'records', submission: key, records: records('animal', 140).concat(records('sample', 70)) });
	const page = await openPage(ctx, key);
	for (let b = 0; b < 5; b++) {
		const r = await gw.publish({
			type: 'validation', submission: key,
			results: results('animal', b * 20, b * 20 + 20).concat(results('sample', b * 10, b * 10 + 10))
		});
		await waitSeq(page, r.seq);
		const api = (await gw.get(`/api/v1/submissions/${key}`)).body;
		assertEq(api.seq, r.seq, 'api seq');
		for (const kind of ['animal', 'sample']) {
			const s = api.summary[kind];
			const cells = await page.$$eval(`[data-testid=row-${kind}] td`,
				(td) => Object.fromEntries(td.map((e) => [e.dataset.field, +e.textContent])));
			assertEq(cells, { all: s.all, pass: s.pass, warning: s.warning, error: s.error,
				unknown: s.unknown, issues: s.issues }, `${kind} numbers after batch ${b + 1}`);
			// wait out the width transition, then compare the segments
			await page.waitForFunction((k) => [...document.querySelectorAll(`[data-testid=bar-${k}] .seg`)]
				.every((e) => Math.abs(e.getBoundingClientRect().width - e.parentElement.clientWidth *
					parseFloat(e.style.width) / 100) < 0.5), kind, { timeout: WAIT });
			const bar = await page.$eval(`[data-testid=bar-${kind}] .bar`, (e) => ({
				w: e.clientWidth, label: e.getAttribute('aria-label'), role: e.getAttribute('role'),
				segs: [...e.querySelectorAll('.seg')].map((s) => ({
					id: s.dataset.testid, n: +s.dataset.count, w: s.getBoundingClientRect().width
				}))
			}));
			assertEq(bar.role, 'img', 'bar role');
			for (const f of ['pass', 'warning', 'error', 'unknown']) {
				const seg = bar.segs.find((x) => x.id === `seg-${kind}-${f}`);
				assert(seg, `segment ${kind} ${f}`);
				assertEq(seg.n, s[f], `${kind} ${f} segment count`);
				const want = bar.w * s[f] / s.all;
				assert(Math.abs(seg.w - want) <= 1.5, `${kind} ${f} width ${seg.w} vs ${want}`);
				assert(bar.label.includes(`${s[f]} ${f === 'unknown' ? 'not validated' : f}`),
					`aria-label names ${f}: ${bar.label}`);
			}
		}
		// most frequent messages with their counts and columns
		const rows = await page.$$eval('[data-testid=messages] tbody tr', (tr) => tr.map((r) =>
			[...r.children].map((c) => c.textContent)));
		const want = api.summary.messages.map((m) => [m.text, m.kind, m.column, String(m.count)]);
		assertEq(rows, want, `messages after batch ${b + 1}`);
	}
	const final = (await gw.get(`/api/v1/submissions/${key}`)).body.summary;
	assertEq([final.animal.unknown, final.sample.unknown], [40, 20], 'some records still unvalidated');
	assert(final.animal.error > 0 && final.animal.warning > 0, 'a mix of results');
	await page.close();
});

t.test('counts a legacy backend reported: numbers and bar, until records of its own take over', async (ctx) => {
	const gw = ctx.gw, key = 'legacy-counts';
	// a legacy backend on the legacy socket, no token (loopback is a publisher network)
	await promisify(execFile)('/usr/bin/python3', [path.join(here, 'legacy_backend.py'),
		`ws://127.0.0.1:${gw.port}/ws/submissions/${key}/`, JSON.stringify({
			message: 'Ready', notification_message: 'checked by the backend',
			validation_message: { animals: 10, samples: 4, animal_unkn: 2, sample_unkn: 0,
				animal_issues: 3, sample_issues: 1 }
		})], { timeout: 20000 });
	const page = await openPage(ctx, key);
	await page.waitForSelector('[data-testid=row-animal]', { timeout: WAIT });
	const cells = async (kind) => page.$$eval(`[data-testid=row-${kind}] td`,
		(td) => Object.fromEntries(td.map((e) => [e.dataset.field, e.textContent])));
	assertEq(await cells('animal'), { all: '10', pass: '\u2013', warning: '\u2013', error: '\u2013',
		unknown: '2', issues: '3' }, 'reported animal numbers (no pass/warning/error split)');
	assertEq(await cells('sample'), { all: '4', pass: '\u2013', warning: '\u2013', error: '\u2013',
		unknown: '0', issues: '1' }, 'reported sample numbers');
	assert(await page.isVisible('[data-testid=reported-animal]'), 'marked as reported');
	const label = await page.$eval('[data-testid=bar-animal] .bar', (e) => e.getAttribute('aria-label'));
	assertEq(label, 'animal: 5 valid, 3 with issues, 2 not validated, of 10 records', 'bar of reported counts');
	// records of its own for animal: computed numbers for animal, sample still reported
	const r = await gw.publish({ type: 'validation', submission: key,
		results: [{ kind: 'animal', name: 'a1', status: 'Pass' }] });
	await waitSeq(page, r.seq);
	assertEq(await cells('animal'), { all: '1', pass: '1', warning: '0', error: '0', unknown: '0', issues: '0' },
		'computed animal numbers');
	assert(!(await page.isVisible('[data-testid=reported-animal]')), 'animal no longer reported');
	assert(await page.isVisible('[data-testid=reported-sample]'), 'sample still reported');
	await page.close();
});

t.test('the list page shows submissions and links to their pages', async (ctx) => {
	const page = await ctx.browser.newPage();
	page.on('pageerror', (e) => ctx.pageErrors.push(`index: ${e}`));
	await page.goto(`${ctx.gw.url}/`);
	await page.waitForSelector('[data-testid=sub-valid-1]', { timeout: WAIT });
	const list = (await ctx.gw.get('/api/v1/submissions')).body.submissions.map((s) => s.submission);
	const shown = await page.$$eval('[data-testid=subs] tbody tr a', (a) => a.map((e) => e.textContent));
	assertEq(shown, list, 'the list in the API order (newest first)');
	assertEq(await page.getAttribute('[data-testid=sub-live-1] .badge', 'data-status'), 'Completed', 'badge');
	// it refreshes by itself
	await ctx.gw.publish({ type: 'status', submission: 'fresh-one', status: 'Ready' });
	await page.waitForSelector('[data-testid=sub-fresh-one] .badge[data-status=Ready]', { timeout: WAIT });
	await page.click('[data-testid=sub-known] a');
	await page.waitForURL(`${ctx.gw.url}/submissions/known`, { timeout: WAIT });
	await page.waitForSelector('[data-testid=status][data-status=Loaded]', { timeout: WAIT });
	await page.close();
});

t.test('keyboard: skip link first, then the page is reachable', async (ctx) => {
	const page = await openPage(ctx, 'known');
	await page.keyboard.press('Tab');
	assertEq(await page.evaluate(() => document.activeElement.textContent), 'Skip to content', 'first tab stop');
	await page.keyboard.press('Enter');
	// the fragment navigation is not synchronous with the key press
	await page.waitForFunction(() => location.hash === '#main', null, { timeout: WAIT })
		.catch(() => {});
	assert(page.url().endsWith('#main'), 'skip link moves to main');
	assertEq(await page.getAttribute('[data-testid=connection]', 'aria-live'), 'polite', 'indicator is announced');
	await page.close();
});

t.test('screenshot of the submission page (tests/artifacts/submission.png)', async (ctx) => {
	const page = await openPage(ctx, 'valid-1', { width: 1100, height: 900 });
	await ctx.gw.publish({ type: 'status', submission: 'valid-1', status: 'Need Revision',
		notification: 'Some records have errors: please fix them' });
	await page.waitForSelector('[data-testid=status][data-status="Need Revision"]', { timeout: WAIT });
	await page.waitForTimeout(400);   // let the bar's width transition finish for the picture
	const file = artifact('submission.png');
	await page.screenshot({ path: file, fullPage: true });
	const png = fs.readFileSync(file);
	assert(png.length > 10000 && png.subarray(1, 4).toString() === 'PNG', 'a real PNG');
	const phone = await openPage(ctx, 'valid-1', { width: 390, height: 844 });
	const overflow = await phone.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
	assert(overflow <= 0, `no sideways scrolling on a phone (overflow ${overflow}px)`);
	await phone.screenshot({ path: artifact('submission-phone.png'), fullPage: true });
	console.log(`      screenshots: ${path.relative(process.cwd(), file)}, submission-phone.png`);
	await phone.close();
	await page.close();
});

function jwt(secret, payload) {
	const b64 = (x) => Buffer.from(x).toString('base64url');
	const head = b64(JSON.stringify({ alg: 'HS256', typ: 'JWT' })) + '.' + b64(JSON.stringify(payload));
	return head + '.' + crypto.createHmac('sha256', secret).update(head).digest('base64url');
}

t.test('with --auth-secret: ?token= is passed on; a key it does not list is refused', async (ctx) => {
	const dir = tmpDir('sg-browser-auth-');
	const gw = await new Gateway({ port: await freePort(), db: path.join(dir, 'statusgate.db'),
		args: ['--auth-secret', 's3cret'] }).start();
	try {
		const token = jwt('s3cret', { submissions: ['sec-1'], exp: Math.floor(Date.now() / 1000) + 3600 });
		await gw.publish({ type: 'status', submission: 'sec-1', status: 'Loaded', notification: 'one' });
		await gw.publish({ type: 'status', submission: 'sec-1', status: 'Ready', notification: 'two' });
		const page = await ctx.browser.newPage();
		page.on('pageerror', (e) => ctx.pageErrors.push(`auth: ${e}`));
		await page.goto(`${gw.url}/submissions/sec-1?token=${token}`);
		await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: WAIT });
		assertEq(await page.getAttribute('[data-testid=status]', 'data-status'), 'Ready', 'state with a token');
		// the timeline back-fill went through the read API with the token too
		await page.waitForFunction(() => document.querySelectorAll('[data-testid=timeline] li').length === 2,
			null, { timeout: WAIT });
		await gw.publish({ type: 'status', submission: 'sec-1', status: 'Completed', notification: 'three' });
		await page.waitForSelector('[data-testid=status][data-status=Completed]', { timeout: WAIT });
		// the same token on another key: the subscription is refused and the page says so
		await page.goto(`${gw.url}/submissions/sec-2?token=${token}`);
		await page.waitForSelector('[data-testid=connection][data-state=offline]', { timeout: WAIT });
		const msg = await page.textContent('[data-testid=connection-text]');
		assert(/not connected/i.test(msg), `indicator text: ${msg}`);
		assertEq(await page.getAttribute('[data-testid=status]', 'data-status'), '', 'nothing shown');
		await page.close();
	} finally {
		await gw.stop();
		fs.rmSync(dir, { recursive: true, force: true });
	}
});

t.test('no script errors on any page', async (ctx) => {
	assertEq(ctx.pageErrors, [], 'page errors');
});

await t.run(openGatewayAndBrowser, closeGatewayAndBrowser);
