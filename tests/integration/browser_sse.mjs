// Server-Sent Events with Chromium's own EventSource (not a hand-made
// client), against the real gateway:
// - live updates: the snapshot, then each event, with lastEventId
//   "<epoch>:<seq>" and the /ws JSON in data;
// - a gateway restart (SIGTERM, then the same port and store) while events
//   are published and the stream is kept away: EventSource reconnects by
//   itself with Last-Event-ID and gets exactly the events it missed, in
//   order, without gap or duplicate, then live ones.
import {
	Runner, assert, assertEq, closeGatewayAndBrowser, openGatewayAndBrowser, sleep, waitFor
} from './browserlib.mjs';

const WAIT = 30000;
const t = new Runner('browser_sse');

// a page of the gateway's origin with an EventSource on key whose messages
// (and errors) land in window.sse_
async function openStream(ctx, key) {
	const page = await ctx.browser.newPage();
	page.on('pageerror', (e) => ctx.pageErrors.push(`${key}: ${e}`));
	await page.goto(`${ctx.gw.url}/favicon.svg`);
	await page.evaluate((k) => {
		window.sse_ = { msgs: [], errors: [], opens: 0 };
		const es = new EventSource(`/sse/submissions/${k}`);
		window.es_ = es;
		es.onopen = () => window.sse_.opens++;
		es.onmessage = (e) => window.sse_.msgs.push({ id: e.lastEventId, data: JSON.parse(e.data) });
		es.onerror = () => window.sse_.errors.push(es.readyState);
	}, key);
	return page;
}

const msgs = (page) => page.evaluate(() => window.sse_.msgs);

async function waitMsgs(page, n) {
	return waitFor(async () => {
		const m = await msgs(page);
		return m.length >= n && m;
	}, WAIT, `${n} messages`);
}

t.test('live updates through EventSource', async (ctx) => {
	const gw = ctx.gw, key = 'es-live';
	const first = await gw.publish({ type: 'status', submission: key, status: 'Loaded', notification: 'loaded' });
	const page = await openStream(ctx, key);
	const [snap] = await waitMsgs(page, 1);
	assertEq(snap.id, `${first.epoch}:${first.seq}`, 'snapshot id');
	assertEq([snap.data.op, snap.data.status, snap.data.seq], ['snapshot', 'Loaded', first.seq], 'snapshot');
	assertEq(await page.evaluate(() => window.es_.readyState), 1, 'open');
	const sent = [];
	for (let i = 1; i <= 10; i++)
		sent.push(await gw.publish(i % 4 === 0
			? { type: 'status', submission: key, status: 'Need Revision', notification: `step ${i}` }
			: { type: 'notification', submission: key, notification: `step ${i}` }));
	const got = (await waitMsgs(page, 11)).slice(1);
	assertEq(got.map((m) => m.id), sent.map((r) => `${r.epoch}:${r.seq}`), 'ids');
	assertEq(got.map((m) => [m.data.op, m.data.seq, m.data.notification]),
		sent.map((r, i) => ['event', r.seq, `step ${i + 1}`]), 'events in order');
	const api = (await gw.get(`/api/v1/submissions/${key}`)).body;
	const last = got[got.length - 1].data;
	assertEq([last.status, last.notification, last.summary], [api.status, api.notification, api.summary],
		'the last event is the state');
	await page.close();
});

t.test('a gateway restart: EventSource resumes with Last-Event-ID and misses nothing', async (ctx) => {
	const gw = ctx.gw, key = 'es-restart';
	const first = await gw.publish({ type: 'status', submission: key, status: 'Loaded', notification: 'before' });
	const page = await openStream(ctx, key);
	// the stream's requests and the Last-Event-ID each one carried
	const requests = [];
	page.on('request', (r) => {
		if (r.url().includes('/sse/'))
			requests.push(r.allHeaders().then((h) => h['last-event-id'] || null));
	});
	await waitMsgs(page, 1);
	const before = [];
	for (let i = 1; i <= 5; i++)
		before.push(await gw.publish({ type: 'notification', submission: key, notification: `before ${i}` }));
	await waitMsgs(page, 6);
	const lastId = `${before[4].epoch}:${before[4].seq}`;

	// keep the stream away (its reconnects fail as on a dead network) across
	// the restart and while events are published
	await page.route('**/sse/**', (route) => route.abort('connectionrefused'));
	await gw.stop();     // SIGTERM: the stream ends, EventSource starts reconnecting
	await waitFor(() => page.evaluate(() => window.es_.readyState === 0), WAIT, 'EventSource reconnecting');
	await gw.start();
	const missed = [];
	for (let i = 1; i <= 20; i++)
		missed.push(await gw.publish(i % 5 === 0
			? { type: 'status', submission: key, status: 'Ready', notification: `missed ${i}` }
			: { type: 'notification', submission: key, notification: `missed ${i}` }));
	await sleep(500);
	assertEq((await msgs(page)).length, 6, 'nothing arrived while away');
	await page.unroute('**/sse/**');

	// EventSource comes back by itself (its retry: hint is 1 to 3 s)
	const all = await waitMsgs(page, 26);
	const after = all.slice(6);
	assertEq(after.map((m) => [m.data.op, m.data.seq]), missed.map((r) => ['event', r.seq]),
		'the missed events, in order, without gap or duplicate');
	assertEq(after.map((m) => m.id), missed.map((r) => `${r.epoch}:${r.seq}`), 'ids');
	assertEq(after.map((m) => m.data.notification), missed.map((_, i) => `missed ${i + 1}`), 'payloads');
	// (a snapshot would have come, had it reconnected without Last-Event-ID)
	assert(requests.length >= 1, 'reconnected');
	assertEq(await requests[requests.length - 1], lastId, 'the reconnect carried Last-Event-ID');
	// live again, on the same EventSource
	const live = await gw.publish({ type: 'status', submission: key, status: 'Completed', notification: 'live' });
	const end = await waitMsgs(page, 27);
	assertEq([end[26].data.seq, end[26].data.status], [live.seq, 'Completed'], 'live after the resume');
	const st = await page.evaluate(() => ({ state: window.es_.readyState, opens: window.sse_.opens }));
	assertEq(st.state, 1, 'open');
	assert(st.opens >= 2, 'the same EventSource opened again');
	assertEq(first.epoch, live.epoch, 'same store');
	await page.close();
});

t.test('no script errors', async (ctx) => {
	assertEq(ctx.pageErrors, [], 'page errors');
});

await t.run(openGatewayAndBrowser, closeGatewayAndBrowser);
