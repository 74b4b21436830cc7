// Swapping statusgate in for a Django Channels server, as a user would: a
// status page written for Channels (the web app renders the state
// server-side, then the page's script opens ws://<its host>/ws/submissions/
// {pk}/ and applies each frame), served through a real nginx running
// deploy/nginx/statusgate.conf in front of the "web app" and statusgate, in
// headless Chromium; and a legacy backend job that opens the legacy socket
// itself and sends one frame, with no token (tests/integration/
// legacy_backend.py, connecting from 127.0.0.2, a host of the backends'
// network).
import { execFile } from 'node:child_process';
import http from 'node:http';
import path from 'node:path';
import { promisify } from 'node:util';
import {
	Gateway, Runner, artifact, assert, assertEq, freePort, launchBrowser, tmpDir, waitFor, startNginx
} from './browserlib.mjs';

const WAIT = 10000;
const here = path.dirname(new URL(import.meta.url).pathname);
const PY = '/usr/bin/python3';
const t = new Runner('browser_channels');

// the page as the Django template rendered it: state from the app's own
// database, then the Channels script, untouched
function renderPage(pk) {
	return `<!doctype html><meta charset="utf-8"><title>Submission ${pk}</title>
<h1>Submission ${pk}</h1>
<p>Status: <span id="status">Loaded</span></p>
<p id="notification">Rendered by the web app</p>
<p id="counts">animals 5 (5 unknown, 0 issues)</p>
<button id="submit" disabled>Submit</button>
<script>
const socket = new WebSocket((location.protocol === 'https:' ? 'wss://' : 'ws://') +
                             window.location.host + '/ws/submissions/${pk}/');
window.frames_ = [];
window.open_ = false;
socket.onopen = function () { window.open_ = true; };
socket.onmessage = function (e) {
	const data = JSON.parse(e.data);
	window.frames_.push(data);
	document.getElementById('status').textContent = data.message;
	document.getElementById('notification').textContent = data.notification_message;
	const v = data.validation_message;
	if (v !== '')
		document.getElementById('counts').textContent = 'animals ' + v.animals + ' (' + v.animal_unkn +
			' unknown, ' + v.animal_issues + ' issues)';
	document.getElementById('submit').disabled = data.message !== 'Ready';
};
</script>`;
}

function startWebApp(port) {
	const srv = http.createServer((req, res) => {
		const m = /^\/submissions\/([A-Za-z0-9_.-]+)\/$/.exec(req.url);
		if (!m) {
			res.writeHead(404).end('not found');
			return;
		}
		res.writeHead(200, { 'content-type': 'text/html; charset=utf-8' }).end(renderPage(m[1]));
	});
	return new Promise((resolve) => srv.listen(port, '127.0.0.1', () => resolve(srv)));
}

async function backendSends(ctx, pk, frame) {
	await promisify(execFile)(PY, [path.join(here, 'legacy_backend.py'),
		`ws://127.0.0.1:${ctx.gw.port}/ws/submissions/${pk}/`, JSON.stringify(frame),
		'--source', '127.0.0.2'], { timeout: 20000 });
}

async function openPage(ctx, pk) {
	const page = await ctx.browser.newPage();
	page.on('pageerror', (e) => ctx.pageErrors.push(String(e)));
	await page.goto(`http://127.0.0.1:${ctx.nginx.port}/submissions/${pk}/`);
	await page.waitForFunction(() => window.open_, null, { timeout: WAIT });
	return page;
}

const text = (page, id) => page.textContent('#' + id);

t.test('the page keeps its rendered state, then shows what the backend sent', async (ctx) => {
	const page = await openPage(ctx, '42');
	// statusgate has never heard of 42: no frame, nothing blanked
	await new Promise((r) => setTimeout(r, 500));
	assertEq(await page.evaluate(() => window.frames_.length), 0, 'no initial frame');
	assertEq(await text(page, 'status'), 'Loaded', 'rendered status kept');
	assertEq(await text(page, 'notification'), 'Rendered by the web app', 'rendered notification kept');
	assertEq(await text(page, 'counts'), 'animals 5 (5 unknown, 0 issues)', 'rendered counts kept');

	await backendSends(ctx, '42', {
		message: 'Ready', notification_message: 'Validation passed',
		validation_message: { animals: 5, samples: 2, animal_unkn: 0, sample_unkn: 0, animal_issues: 1, sample_issues: 0 }
	});
	await page.waitForFunction(() => document.getElementById('status').textContent === 'Ready', null, { timeout: WAIT });
	assertEq(await text(page, 'notification'), 'Validation passed', 'notification');
	assertEq(await text(page, 'counts'), 'animals 5 (0 unknown, 1 issues)', 'the backend\'s counts');
	assertEq(await page.isEnabled('#submit'), true, 'the button follows the status');
	await page.screenshot({ path: artifact('channels-page.png') });
	await page.close();
});

t.test('a page opened later gets the stored state with the counts at once', async (ctx) => {
	const page = await openPage(ctx, '42');
	await page.waitForFunction(() => window.frames_.length === 1, null, { timeout: WAIT });
	assertEq(await text(page, 'status'), 'Ready', 'stored status');
	assertEq(await text(page, 'counts'), 'animals 5 (0 unknown, 1 issues)', 'stored counts');
	// and the next frame of the backend, with counts as "": the page keeps its counts
	await backendSends(ctx, '42', { message: 'Submitted', notification_message: 'Sent', validation_message: '' });
	await page.waitForFunction(() => document.getElementById('status').textContent === 'Submitted', null, { timeout: WAIT });
	assertEq(await page.isEnabled('#submit'), false, 'button disabled again');
	await page.close();
});

t.test('a frame sent by the page through nginx is refused (1008) and reaches nobody', async (ctx) => {
	const watcher = await openPage(ctx, '42');
	await watcher.waitForFunction(() => window.frames_.length === 1, null, { timeout: WAIT });
	const spoofer = await openPage(ctx, '42');
	const code = await spoofer.evaluate(() => new Promise((resolve) => {
		const s = new WebSocket('ws://' + location.host + '/ws/submissions/42/');
		s.onopen = () => s.send(JSON.stringify({ message: 'Completed', notification_message: 'spoofed' }));
		s.onclose = (e) => resolve(e.code);
	}));
	assertEq(code, 1008, 'closed with 1008');
	await new Promise((r) => setTimeout(r, 300));
	assertEq(await watcher.evaluate(() => window.frames_.length), 1, 'nothing broadcast');
	assertEq((await ctx.gw.get('/api/v1/submissions/42')).body.status, 'Submitted', 'state unchanged');
	await watcher.close();
	await spoofer.close();
});

t.test('no script errors', async (ctx) => {
	assertEq(ctx.pageErrors, [], 'page errors');
});

await t.run(async () => {
	const dir = tmpDir('sg-channels-');
	const gw = await new Gateway({ port: await freePort(), db: path.join(dir, 'statusgate.db'),
		args: ['--trusted-proxies', '127.0.0.1'] }).start();
	const ctx = { gw, dir, pageErrors: [] };
	ctx.app = await startWebApp(await freePort());
	ctx.nginx = await startNginx(gw.port, ctx.app.address().port);
	ctx.browser = await launchBrowser();
	assert(ctx.browser.isConnected(), 'chromium runs');
	return ctx;
}, async (ctx) => {
	if (!ctx)
		return;
	await ctx.browser?.close();
	ctx.nginx?.proc.kill('SIGTERM');
	ctx.app?.close();
	await ctx.gw.stop();
});
