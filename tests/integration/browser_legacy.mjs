// A legacy status page (written for the Django Channels arrangement) keeps
// working: in headless Chromium, plain in-page JavaScript opens
// ws://host/ws/submissions/{key}/ and reads message, notification_message and
// validation_message from each frame, exactly as the old page did.
import {
	Runner, assert, assertEq, closeGatewayAndBrowser, openGatewayAndBrowser
} from './browserlib.mjs';

const WAIT = 10000;
const t = new Runner('browser_legacy');

// the old page's script, more or less verbatim: it renders into the DOM
const LEGACY_PAGE = `<!doctype html><meta charset="utf-8"><title>legacy</title>
<p id="status">-</p><p id="note">-</p><p id="counts">-</p><ol id="log"></ol>`;

function legacyScript(url) {
	return `(() => {
		const socket = new WebSocket(${JSON.stringify(url)});
		window.frames_ = [];
		socket.onmessage = function (e) {
			const data = JSON.parse(e.data);
			window.frames_.push(data);
			document.getElementById('status').textContent = data['message'];
			document.getElementById('note').textContent = data['notification_message'];
			const v = data['validation_message'];
			document.getElementById('counts').textContent = v === '' ? 'none'
				: 'animals ' + v['animals'] + ' (' + v['animal_unkn'] + ' unknown, ' + v['animal_issues'] +
				  ' issues), samples ' + v['samples'] + ' (' + v['sample_unkn'] + ' unknown, ' +
				  v['sample_issues'] + ' issues)';
			const li = document.createElement('li');
			li.textContent = data['message'];
			document.getElementById('log').append(li);
		};
		window.socketOpen_ = false;
		socket.onopen = function () { window.socketOpen_ = true; };
		window.socketClosed_ = null;
		socket.onclose = function (e) { window.socketClosed_ = e.code; };
	})();`;
}

async function legacyPage(ctx, key, slash = true) {
	const page = await ctx.browser.newPage();
	page.on('pageerror', (e) => ctx.pageErrors.push(String(e)));
	// a page of its own (about:blank), not one the gateway serves
	await page.setContent(LEGACY_PAGE);
	await page.evaluate((u) => { window.wsBase_ = u; }, `ws://127.0.0.1:${ctx.gw.port}`);
	await page.evaluate(legacyScript(`ws://127.0.0.1:${ctx.gw.port}/ws/submissions/${key}${slash ? '/' : ''}`));
	return page;
}

const frames = (page) => page.evaluate(() => window.frames_);

t.test('a new submission: no frame until the first publish, then each publish', async (ctx) => {
	const page = await legacyPage(ctx, '42');
	await page.waitForFunction(() => window.socketOpen_, null, { timeout: WAIT });
	await new Promise((r) => setTimeout(r, 300));
	assertEq(await frames(page), [], 'no initial frame for an unknown submission');
	assertEq(await page.textContent('#status'), '-', 'the server-rendered status is kept');
	await ctx.gw.publish({ type: 'status', submission: '42', status: 'Loaded', notification: 'Data loaded' });
	await page.waitForFunction(() => document.getElementById('status').textContent === 'Loaded', null, { timeout: WAIT });
	assertEq(await page.textContent('#note'), 'Data loaded', 'notification_message');
	assertEq(await page.textContent('#counts'), 'none', 'no records: validation_message is ""');

	await ctx.gw.publish({ type: 'records', submission: '42', records: [
		{ kind: 'animal', name: 'a1' }, { kind: 'animal', name: 'a2' }, { kind: 'sample', name: 's1' }] });
	await ctx.gw.publish({ type: 'validation', submission: '42', results: [
		{ kind: 'animal', name: 'a1', status: 'Error', messages: [{ text: 'Missing birth date', column: 'birth_date' }] },
		{ kind: 'animal', name: 'a2', status: 'Pass' }] });
	await ctx.gw.publish({ type: 'status', submission: '42', status: 'need revision', notification: 'fix a1' });
	await page.waitForFunction(() => window.frames_.length === 4, null, { timeout: WAIT });
	const f = await frames(page);
	assertEq(f.map((x) => x.message), ['Loaded', 'Loaded', 'Loaded', 'Need Revision'], 'one frame per publish');
	assertEq(f[3].validation_message, { animals: 2, samples: 1, animal_unkn: 0, sample_unkn: 1,
		animal_issues: 1, sample_issues: 0 }, 'legacy counts');
	assertEq(await page.textContent('#counts'),
		'animals 2 (0 unknown, 1 issues), samples 1 (1 unknown, 0 issues)', 'rendered as the old page did');
	assertEq(await page.evaluate(() => window.socketClosed_), null, 'socket still open');
	await page.close();
});

t.test('an existing submission, without the trailing slash: current state first', async (ctx) => {
	const page = await legacyPage(ctx, '42', false);
	await page.waitForFunction(() => window.frames_.length === 1, null, { timeout: WAIT });
	const [f] = await frames(page);
	assertEq([f.message, f.notification_message], ['Need Revision', 'fix a1'], 'current state');
	await ctx.gw.publish({ type: 'status', submission: '42', status: 'Completed', notification: 'archived' });
	await page.waitForFunction(() => document.getElementById('status').textContent === 'Completed', null, { timeout: WAIT });
	await page.close();
});

t.test('a frame sent by the browser is not broadcast (closed with 1008)', async (ctx) => {
	const watcher = await legacyPage(ctx, 'spoof');
	const spoofer = await legacyPage(ctx, 'spoof');
	for (const p of [watcher, spoofer])
		await p.waitForFunction(() => window.socketOpen_, null, { timeout: WAIT });
	await spoofer.evaluate(() => new Promise((resolve) => {
		const s = new WebSocket(window.wsBase_ + '/ws/submissions/spoof/');
		s.onopen = () => s.send(JSON.stringify({ message: 'Completed', notification_message: 'spoofed' }));
		s.onclose = (e) => { window.spoofClose_ = e.code; resolve(); };
	}));
	assertEq(await spoofer.evaluate(() => window.spoofClose_), 1008, 'spoofing socket closed with 1008');
	// a real publish still reaches the watcher, and the spoof never did
	await ctx.gw.publish({ type: 'status', submission: 'spoof', status: 'Ready', notification: 'real' });
	await watcher.waitForFunction(() => window.frames_.length === 1, null, { timeout: WAIT });
	assertEq((await frames(watcher)).map((x) => x.notification_message), ['real'], 'no spoofed frame');
	await watcher.close();
	await spoofer.close();
});

t.test('no script errors', async (ctx) => {
	assertEq(ctx.pageErrors, [], 'page errors');
});

await t.run(async () => {
	// a publish token is configured, as in production: the browser, which
	// has none, is not a trusted publisher even on loopback
	const ctx = await openGatewayAndBrowser({ publishToken: 'backend-secret' });
	assert(ctx.browser.isConnected(), 'chromium runs');
	return ctx;
}, closeGatewayAndBrowser);
