// web/statusgate.js, the client library, in headless Chromium against the
// real gateway, with the status page as its first user:
// - on a slow 3G network (DevTools protocol network emulation) while
//   hundreds of events are published: the page ends on the latest state
//   and stays live;
// - behind nginx (deploy/nginx/statusgate.conf) whose /ws refuses the
//   upgrade with 403, as a corporate proxy does: the page falls back to
//   Server-Sent Events and stays live, through a gateway restart too;
// - the library on its own (imported by a page): states in seq order, and
//   stop() ends the connection and the deliveries.
import {
	Runner, assert, assertEq, closeGatewayAndBrowser, openGatewayAndBrowser, sleep, waitFor, startNginx
} from './browserlib.mjs';

const WAIT = 30000;
const SLOW_WAIT = 180000;   // a slow 3G link: generous
const t = new Runner('browser_client');

// DevTools' "Slow 3G" preset: 2 s round trips, 400 kbit/s each way
const SLOW_3G = { offline: false, latency: 2000, downloadThroughput: 50000, uploadThroughput: 50000 };

async function openPage(ctx, url, what) {
	const page = await ctx.browser.newPage();
	page.on('pageerror', (e) => ctx.pageErrors.push(`${what}: ${e}`));
	page.wsFrames_ = 0;
	page.on('websocket', (ws) => ws.on('framereceived', () => page.wsFrames_++));
	await page.goto(url);
	await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: SLOW_WAIT });
	return page;
}

const seqShown = (page) => page.textContent('[data-testid=seq]');

async function waitSeq(page, seq, ms = WAIT) {
	await page.waitForFunction((s) => document.querySelector('[data-testid=seq]').textContent === String(s),
		seq, { timeout: ms });
}

// n publishes, a few at a time (each answered after its fan-out)
async function publishMany(gw, docs, workers = 8) {
	const out = [];
	let next = 0;
	await Promise.all(Array.from({ length: workers }, async () => {
		while (next < docs.length) {
			const i = next++;
			out[i] = await gw.publish(docs[i]);
		}
	}));
	return out;
}

async function metric(gw, name) {
	const text = await (await fetch(`${gw.url}/metrics`)).text();
	const line = text.split('\n').find((l) => l.startsWith(name + ' '));
	return line ? Number(line.split(' ')[1]) : NaN;
}

const filler = (i) => `${i}: ` + 'lorem ipsum dolor sit amet '.repeat(70);

t.test('slow 3G while hundreds of events are published: the page ends on the latest state', async (ctx) => {
	const gw = ctx.gw, key = 'slow-3g', N = 400;
	await gw.publish({ type: 'records', submission: key,
		records: Array.from({ length: 30 }, (_, i) => ({ kind: 'animal', name: `a${i}` })) });
	const page = await openPage(ctx, `${gw.url}/submissions/${key}`, key);
	const cdp = await page.context().newCDPSession(page);
	await cdp.send('Network.enable');
	await cdp.send('Network.emulateNetworkConditions', SLOW_3G);
	const docs = Array.from({ length: N }, (_, i) => i % 10 === 9
		? { type: 'validation', submission: key,
			results: [{ kind: 'animal', name: `a${i % 30}`, status: i % 20 === 19 ? 'Error' : 'Pass',
				messages: i % 20 === 19 ? [{ text: filler(i), column: 'c' }] : [] }] }
		: { type: 'notification', submission: key, notification: filler(i) });
	const res = await publishMany(gw, docs);
	const last = Math.max(...res.map((r) => r.seq));
	const t0 = Date.now();
	await waitSeq(page, last, SLOW_WAIT);
	const api = (await gw.get(`/api/v1/submissions/${key}`)).body;
	const st = await page.evaluate(() => window.statusgatePage.state());
	assertEq([st.seq, st.status, st.notification, st.summary], [api.seq, api.status, api.notification, api.summary],
		'the page holds the latest state');
	assertEq(await page.textContent('[data-testid=notification]'), api.notification, 'and shows it');
	assertEq(await page.getAttribute('[data-testid=connection]', 'data-state'), 'live', 'live');
	const conflated = await metric(gw, 'statusgate_conflated_total');
	console.log(`  ${N} events on slow 3G: caught up ${Date.now() - t0} ms after the last publish; ` +
		`${page.wsFrames_} WebSocket frames reached the page, ${conflated} replaced in the gateway`);
	// the link cannot carry them all: the gateway sent newer states instead
	assert(conflated > 0 && page.wsFrames_ < N / 2, `${page.wsFrames_} frames for ${N} events`);
	// still live, still throttled
	const more = await gw.publish({ type: 'status', submission: key, status: 'Ready', notification: 'after the burst' });
	await waitSeq(page, more.seq, SLOW_WAIT);
	assertEq(await page.getAttribute('[data-testid=status]', 'data-status'), 'Ready', 'live after the burst');
	// the timeline is filled in from the read API where seq jumped
	await cdp.send('Network.emulateNetworkConditions', { offline: false, latency: 0,
		downloadThroughput: -1, uploadThroughput: -1 });
	await page.waitForFunction((s) => {
		const li = [...document.querySelectorAll('[data-testid=timeline] li')].map((e) => +e.dataset.seq);
		return li.length === 50 && li[0] === s && li.every((q, i) => q === s - i);
	}, more.seq, { timeout: WAIT });
	await page.close();
});

t.test('a proxy refuses the WebSocket upgrade: the page falls back to SSE and stays live', async (ctx) => {
	const gw = ctx.gw, key = 'behind-proxy';
	// nginx in front: /ws answers 403, /sse/ goes to the gateway, and so does
	// everything else (the "web application" here is the gateway itself,
	// which serves the status page and statusgate.js)
	const ng = await startNginx(gw.port, gw.port, { refuseWebSocket: true });
	try {
		await gw.publish({ type: 'status', submission: key, status: 'Loaded', notification: 'first' });
		const page = await openPage(ctx, `http://127.0.0.1:${ng.port}/submissions/${key}`, key);
		assertEq(await page.getAttribute('[data-testid=connection]', 'data-transport'), 'sse', 'over SSE');
		assert(/server-sent events/i.test(await page.textContent('[data-testid=connection-text]')),
			'the indicator says so');
		assertEq(page.wsFrames_, 0, 'no WebSocket got through');
		assertEq(await seqShown(page), '1', 'the state');
		for (let i = 1; i <= 10; i++) {
			const r = await gw.publish({ type: 'notification', submission: key, notification: `via sse ${i}` });
			await waitSeq(page, r.seq);
			assertEq(await page.textContent('[data-testid=notification]'), `via sse ${i}`, 'live');
		}
		// a gateway restart behind the proxy: EventSource resumes with
		// Last-Event-ID (nginx answers 502 while the gateway is away: the
		// library opens a new EventSource from its last position)
		await gw.stop();
		await page.waitForSelector('[data-testid=connection]:not([data-state=live])', { timeout: WAIT });
		await gw.start();
		const during = [];
		for (let i = 1; i <= 5; i++)
			during.push(await gw.publish({ type: 'notification', submission: key, notification: `restart ${i}` }));
		await waitSeq(page, during[4].seq, WAIT);
		await page.waitForSelector('[data-testid=connection][data-state=live]', { timeout: WAIT });
		assertEq(await page.getAttribute('[data-testid=connection]', 'data-transport'), 'sse', 'still SSE');
		await page.waitForFunction((s) => {
			const li = [...document.querySelectorAll('[data-testid=timeline] li')].map((e) => +e.dataset.seq);
			return li.length === s && li.every((q, i) => q === s - i);
		}, during[4].seq, { timeout: WAIT });
		const r = await gw.publish({ type: 'status', submission: key, status: 'Completed', notification: 'done' });
		await waitSeq(page, r.seq);
		assertEq(await page.getAttribute('[data-testid=status]', 'data-status'), 'Completed', 'live after');
		await page.close();
	} finally {
		ng.proc.kill('SIGTERM');
	}
});

t.test('the library on its own: states in seq order, and stop() ends it', async (ctx) => {
	const gw = ctx.gw, key = 'lib-1';
	await gw.publish({ type: 'status', submission: key, status: 'Waiting', notification: 'zero' });
	const page = await ctx.browser.newPage();
	page.on('pageerror', (e) => ctx.pageErrors.push(`lib: ${e}`));
	await page.goto(`${gw.url}/favicon.svg`);
	for (const transport of ['ws', 'sse']) {
		await page.evaluate(async ([k, tr]) => {
			const { watch } = await import('/statusgate.js');
			window.got_ = [];
			window.statuses_ = [];
			window.w_ = watch(k, (state, frame) => window.got_.push([frame.op, state.seq, state.notification]),
				{ transport: tr, onStatus: (s, info) => window.statuses_.push(`${s}/${info.transport}`) });
		}, [key, transport]);
		await page.waitForFunction(() => window.statuses_.includes(
			`live/${window.w_.transport()}`), null, { timeout: WAIT });
		const base = (await gw.get(`/api/v1/submissions/${key}`)).body.seq;
		const sent = [];
		for (let i = 1; i <= 5; i++)
			sent.push(await gw.publish({ type: 'notification', submission: key, notification: `${transport} ${i}` }));
		await page.waitForFunction((n) => window.got_.length === n, 6, { timeout: WAIT });
		const got = await page.evaluate(() => window.got_);
		assertEq(got[0].slice(0, 2), ['snapshot', base], `${transport}: a snapshot first`);
		assertEq(got.slice(1), sent.map((r, i) => ['event', r.seq, `${transport} ${i + 1}`]),
			`${transport}: the events in order`);
		await page.evaluate(() => window.w_.stop());
		assertEq((await page.evaluate(() => window.statuses_)).at(-1), `stopped/${transport}`, 'stopped');
		await waitFor(async () => await metric(gw, 'statusgate_connections') === 0 &&
			await metric(gw, 'statusgate_sse_connections') === 0, WAIT, 'the connection to close');
		await gw.publish({ type: 'notification', submission: key, notification: 'after stop' });
		await sleep(300);
		assertEq((await page.evaluate(() => window.got_)).length, 6, `${transport}: nothing after stop()`);
	}
	await page.close();
});

t.test('no script errors', async (ctx) => {
	assertEq(ctx.pageErrors, [], 'page errors');
});

// --sse-heartbeat 1: a stream whose reader left is noticed within a second.
// --send-buffer 65536: on loopback the kernel would buffer megabytes for the
// throttled page (a real slow link's window keeps it small), all of it
// stale states delivered before the latest.
await t.run(() => openGatewayAndBrowser({ args: ['--send-queue', '16', '--sse-heartbeat', '1', '--send-buffer', '65536'] }),
	closeGatewayAndBrowser);
