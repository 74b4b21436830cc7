// The status page across gateway restarts, in headless Chromium:
// - SIGTERM: the indicator says "reconnecting" (then "offline" when the
//   network goes too); the gateway comes back on the same port and db, events
//   are published while the pages are away, and once back they end on the
//   final state with every event in the timeline, in order, without a gap
//   (they resumed with since and got a replay);
// - a new store (new epoch) behind the same address: the page takes a
//   snapshot and shows the new state, never the old one as current;
// - several pages on one submission all converge.
import fs from 'node:fs';
import path from 'node:path';
import {
	Runner, artifact, assert, assertEq, closeGatewayAndBrowser, openGatewayAndBrowser, sleep
} from './browserlib.mjs';

const WAIT = 45000;   // the page's backoff tops out at 10 s; leave plenty of room
const N = 25;
const t = new Runner('browser_reconnect');

async function openPage(ctx, key) {
	const page = await ctx.browser.newPage();
	page.on('pageerror', (e) => ctx.pageErrors.push(`${key}: ${e}`));
	// what the page says and hears on its WebSockets, in order
	page.frames_ = [];
	page.on('websocket', (ws) => {
		ws.on('framesent', (f) => page.frames_.push({ dir: 'out', data: JSON.parse(f.payload) }));
		ws.on('framereceived', (f) => page.frames_.push({ dir: 'in', data: JSON.parse(f.payload) }));
	});
	await page.goto(`${ctx.gw.url}/submissions/${key}`);
	await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: WAIT });
	return page;
}

const connState = (page) => page.getAttribute('[data-testid=connection]', 'data-state');

async function timeline(page) {
	return page.$$eval('[data-testid=timeline] li', (li) => li.map((e) => ({
		seq: +e.dataset.seq, type: e.dataset.type, text: e.querySelector('.ev-text').textContent
	})));
}

t.test('stop, restart, publish meanwhile: the page resumes with every event', async (ctx) => {
	const gw = ctx.gw, key = 'restart-1';
	const first = await gw.publish({ type: 'status', submission: key, status: 'Loaded', notification: 'before the stop' });
	const pages = [await openPage(ctx, key), await openPage(ctx, key)];
	for (const p of pages)
		await p.waitForSelector('[data-testid=status][data-status=Loaded]', { timeout: WAIT });
	// the page fills its timeline from GET .../events once states stop
	// arriving for a moment: let it, or the first event is never in it
	for (const p of pages)
		await p.waitForSelector(`[data-testid=timeline] li[data-seq="${first.seq}"]`, { timeout: WAIT });

	await gw.stop();   // SIGTERM: closes sockets with 1001, exits 0
	for (const p of pages)
		await p.waitForSelector('[data-testid=connection][data-state=reconnecting]', { timeout: WAIT });
	const msg = await pages[0].textContent('[data-testid=connection-text]');
	assert(/reconnecting/i.test(msg), `indicator text: ${msg}`);
	assertEq(await pages[0].getAttribute('[data-testid=status]', 'data-status'), 'Loaded',
		'the last known state stays on screen');
	// take the pages off the network (Chromium's offline emulation) so that
	// they are certainly away while we publish; they must say so
	for (const p of pages)
		await p.context().setOffline(true);
	for (const p of pages)
		await p.waitForSelector('[data-testid=connection][data-state=offline]', { timeout: WAIT });

	await gw.start();
	const seqs = [];
	for (let i = 1; i <= N; i++) {
		const doc = i === N
			? { type: 'status', submission: key, status: 'Ready', notification: `step ${i}` }
			: i % 3 === 0
				? { type: 'status', submission: key, status: 'Need Revision', notification: `step ${i}` }
				: { type: 'notification', submission: key, notification: `step ${i}` };
		seqs.push((await gw.publish(doc)).seq);
	}
	assertEq(seqs, Array.from({ length: N }, (_, i) => first.seq + 1 + i), 'publish seqs');
	const last = seqs[N - 1];
	await sleep(300);
	for (const p of pages) {
		assertEq(await connState(p), 'offline', 'still away');
		assertEq(await p.textContent('[data-testid=seq]'), String(first.seq), 'nothing seen while away');
	}
	// back online: the 'online' event makes them retry at once, with since
	for (const p of pages)
		await p.context().setOffline(false);

	for (const p of pages) {
		await p.waitForSelector('[data-testid=connection][data-state=live]', { timeout: WAIT });
		await p.waitForFunction((s) => document.querySelector('[data-testid=seq]').textContent === String(s),
			last, { timeout: WAIT });
		assertEq(await p.getAttribute('[data-testid=status]', 'data-status'), 'Ready', 'final status');
		assertEq(await p.textContent('[data-testid=notification]'), `step ${N}`, 'final notification');
		const tl = await timeline(p);
		const want = Array.from({ length: N + 1 }, (_, i) => last - i);   // newest first, the first event too
		assertEq(tl.map((e) => e.seq), want, 'timeline without gap or duplicate');
		assertEq(tl.slice(0, N).map((e) => e.text).reverse(),
			Array.from({ length: N }, (_, i) => `step ${i + 1}`), 'events in order');
		// it resumed with since and got a replay, not a snapshot
		const subs = p.frames_.filter((f) => f.dir === 'out' && f.data.op === 'subscribe');
		assert(subs.length >= 2, 'subscribed again');
		const again = subs[subs.length - 1].data;
		assertEq(again.since && again.since.seq, first.seq, 'resubscribe with since');
		const after = p.frames_.slice(p.frames_.indexOf(subs[subs.length - 1]))
			.filter((f) => f.dir === 'in' && f.data.op !== 'pong').map((f) => f.data.op + ':' + (f.data.seq ?? ''));
		assertEq(after.slice(0, N + 1), ['ack:' + last].concat(seqs.map((q) => 'event:' + q)),
			'ack then the missed events in order');
	}
	await pages[0].screenshot({ path: artifact('submission-after-restart.png'), fullPage: true });
	for (const p of pages)
		await p.close();
});

t.test('a new store behind the same address: the page takes a snapshot', async (ctx) => {
	const gw = ctx.gw, key = 'epoch-1';
	for (let i = 1; i <= 5; i++)
		await gw.publish({ type: 'status', submission: key, status: 'Submitted', notification: `old ${i}` });
	const page = await openPage(ctx, key);
	await page.waitForFunction(() => document.querySelector('[data-testid=seq]').textContent === '5', null,
		{ timeout: WAIT });
	const oldEpoch = (await page.evaluate(() => window.statusgatePage.state())).epoch;

	await gw.stop();
	await page.waitForSelector('[data-testid=connection][data-state=reconnecting]', { timeout: WAIT });
	for (const f of fs.readdirSync(ctx.dir))
		if (f.startsWith('statusgate.db'))
			fs.rmSync(path.join(ctx.dir, f));
	await gw.start();
	// the new store knows seq 1..2 only; a replay "since 5" cannot exist
	await gw.publish({ type: 'status', submission: key, status: 'Waiting', notification: 'new store 1' });
	const r = await gw.publish({ type: 'notification', submission: key, notification: 'new store 2' });

	await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: WAIT });
	await page.waitForFunction(() => document.querySelector('[data-testid=notification]').textContent === 'new store 2',
		null, { timeout: WAIT });
	const st = await page.evaluate(() => window.statusgatePage.state());
	assert(st.epoch !== oldEpoch, 'a new epoch');
	assertEq([st.seq, st.status], [r.seq, 'Waiting'], 'the new store\'s state');
	assertEq(await page.textContent('[data-testid=seq]'), String(r.seq), 'seq shown');
	await page.waitForFunction(() => document.querySelectorAll('[data-testid=timeline] li').length === 2, null,
		{ timeout: WAIT });
	const tl = await timeline(page);
	assertEq(tl.map((e) => e.seq), [2, 1], 'the old store\'s events are gone from the timeline');
	// and it is live again
	await gw.publish({ type: 'status', submission: key, status: 'Completed', notification: 'done' });
	await page.waitForSelector('[data-testid=status][data-status=Completed]', { timeout: WAIT });
	await page.close();
});

t.test('no script errors', async (ctx) => {
	assertEq(ctx.pageErrors, [], 'page errors');
});

await t.run(openGatewayAndBrowser, closeGatewayAndBrowser);
