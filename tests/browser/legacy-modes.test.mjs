// The legacy API over the legacy /push modes, through meteord's own frames
// (stream.html, poll.html) and document.domain, in headless Chromium: the
// page is on www.example.test, the server on data.example.test.

import assert from 'node:assert/strict';
import { copyFile, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { describe, test } from 'node:test';

import { LEGACY_TEXTS, legacyGot, publishAndExpect, setupLegacy } from './lib/client.mjs';
import { REPO, openPage, startMeteord, waitInPage, browserSuite } from './lib/harness.mjs';

const wire = LEGACY_TEXTS.map(([w]) => w);
const decoded = LEGACY_TEXTS.map(([, d]) => d);

// The poll modes wait Meteor.pollfreq between requests (3 s by default,
// 2 s for longpoll); the tests poll faster through the same public knobs.
const MODES = {
  stream: { transport: 'legacy' },
  xhrinteractive: {},
  iframe: {},
  longpoll: { tweaks: { minpollfreq: 50 } },
  smartpoll: { tweaks: { pollfreq: 100, minpollfreq: 50 } },
  simplepoll: { tweaks: { pollfreq: 100 } },
};

describe('legacy /push modes through frames', { concurrency: 3 }, () => {
  const ctx = browserSuite();

  for (const [mode, opts] of Object.entries(MODES)) {
    test(`${mode}: backlog, then awkward texts decoded as the original client did`, async () => {
      const server = await startMeteord();
      const { page, problems, close } = await openPage(ctx.chromium.browser, ctx.pages);
      try {
        await server.publish('demo', 'backlog one');
        await server.publish('demo', 'backlog \\"two\\"');
        await server.publish('other', 'not for us');
        await setupLegacy(page, server, { mode, backtrack: 10, ...opts });
        await waitInPage(page, () => window.t.got.length >= 2, null, { what: 'the backlog' });
        let seen = await publishAndExpect(page, server, 'demo', [], [], { from: 2, read: legacyGot });
        assert.deepEqual((await page.evaluate(legacyGot)).slice(0, 2), ['backlog one', 'backlog "two"']);
        seen = await publishAndExpect(page, server, 'demo', wire, decoded, { from: seen, read: legacyGot });
        await publishAndExpect(page, server, 'demo', ['after \\"all\\"'], ['after "all"'], { from: seen, read: legacyGot });
        const t = await page.evaluate(() => ({ ...window.t, mode: Meteor.mode, status: Meteor.status }));
        assert.equal(t.pwned, undefined, 'a message text ran as code');
        assert.ok(t.argc.every((n) => n === 1), 'process gets exactly one argument, the text');
        assert.ok([4, 5].includes(t.status), `status ${t.status}`);
        assert.ok(t.statuses.includes(1) && t.statuses.includes(4), `statuses ${t.statuses}`);
        assert.deepEqual(t.modes, [], 'no fallback to polling');
        assert.equal(t.mode, mode === 'stream' ? 'xhrinteractive' : mode);
        assert.deepEqual(problems.filter((p) => !/document\.domain/.test(p)), []);
      } finally {
        await close();
        await server.stop();
      }
    });
  }

  // A page served by meteord itself needs no document.domain - so it works
  // on an IP address too, where the original client could not.
  for (const mode of ['xhrinteractive', 'simplepoll']) {
    test(`${mode}: a page on the server's own origin (127.0.0.1) needs no document.domain`, async () => {
      const root = await mkdtemp(path.join(tmpdir(), 'meteord-docroot-'));
      for (const file of ['meteor.js', 'stream.html', 'poll.html']) await copyFile(path.join(REPO, 'assets', file), path.join(root, file));
      await writeFile(path.join(root, 'same.html'), '<!DOCTYPE html><html><head><meta charset="utf-8"></head><body></body></html>');
      const server = await startMeteord({ args: ['-SubscriberDocumentRoot', root] });
      const context = await ctx.chromium.browser.createBrowserContext();
      const page = await context.newPage();
      try {
        await server.publish('demo', 'backlog');
        await page.goto(`http://127.0.0.1:${server.subPort}/same.html`);
        await page.addScriptTag({ url: '/meteor.js' });
        await page.evaluate((m, tweaks) => {
          const t = (window.t = { got: [] });
          Meteor.host = '127.0.0.1';
          Meteor.port = Number(location.port);
          Meteor.mode = m;
          Object.assign(Meteor, tweaks);
          Meteor.registerEventCallback('process', (x) => t.got.push(x));
          Meteor.joinChannel('demo', 5);
          Meteor.connect();
        }, mode, MODES[mode].tweaks || {});
        await waitInPage(page, () => window.t.got.length === 1, null, { what: 'the backlog' });
        await publishAndExpect(page, server, 'demo', wire.slice(0, 4), decoded.slice(0, 4), { from: 1, read: legacyGot });
        assert.equal(await page.evaluate(() => document.domain), '127.0.0.1');
      } finally {
        await context.close();
        await server.stop();
        await rm(root, { recursive: true, force: true });
      }
    });
  }

  test('stream: /disconnect/<hostid> ends the stream with eof, status 6 and no reconnect', async () => {
    const server = await startMeteord();
    const { page, close } = await openPage(ctx.chromium.browser, ctx.pages);
    try {
      await server.publish('demo', 'first');
      await setupLegacy(page, server, { mode: 'xhrinteractive', backtrack: 1 });
      await waitInPage(page, () => window.t.got.length === 1 && Meteor.status >= 4, null, { what: 'the stream' });
      const hostid = await page.evaluate(() => Meteor.hostid);
      assert.equal((await server.get(`/disconnect/${hostid}`)).status, 200);
      await waitInPage(page, () => window.t.eofs === 1 && Meteor.status === 6, null, { what: 'eof' });
      // still ended after a message: the original client does not come back
      await server.publish('demo', 'nobody listens');
      await waitInPage(page, () => !document.querySelector('iframe'), null, { what: 'the frame to go' });
      const t = await page.evaluate(() => window.t);
      assert.deepEqual(t.got, ['first']);
      assert.equal(t.statuses.at(-1), 6);
    } finally {
      await close();
      await server.stop();
    }
  });

  test('stream: a ping timeout falls back to smartpoll (changemode "poll") and keeps delivering', async () => {
    // pings every 60 s, the page gives up after 700 ms without one
    const server = await startMeteord({ args: ['-PingInterval', '60'] });
    const { page, close } = await openPage(ctx.chromium.browser, ctx.pages);
    try {
      await server.publish('demo', 'before');
      await setupLegacy(page, server, {
        mode: 'xhrinteractive',
        backtrack: 5,
        tweaks: { pingtimeout: 700, pollfreq: 100, minpollfreq: 50 },
      });
      await waitInPage(page, () => window.t.modes.length === 1, null, { what: 'changemode' });
      const state = await page.evaluate(() => ({ modes: window.t.modes, mode: Meteor.mode }));
      assert.deepEqual(state, { modes: ['poll'], mode: 'smartpoll' });
      await publishAndExpect(page, server, 'demo', wire.slice(0, 3), decoded.slice(0, 3), {
        from: 1,
        read: legacyGot,
      });
      assert.deepEqual((await page.evaluate(legacyGot))[0], 'before');
    } finally {
      await close();
      await server.stop();
    }
  });

  test('longpoll: joining and leaving channels while connected', async () => {
    const server = await startMeteord();
    const { page, close } = await openPage(ctx.chromium.browser, ctx.pages);
    try {
      // a backlog request: a message published before the first poll
      // reaches the server is not lost
      await setupLegacy(page, server, { mode: 'longpoll', channel: 'a', backtrack: 5, tweaks: { minpollfreq: 50 } });
      await publishAndExpect(page, server, 'a', ['on a'], ['on a'], { from: 0, read: legacyGot });
      // joining reconnects (as in the original); b asks for its backlog, so
      // a message published meanwhile is not lost
      await page.evaluate(() => Meteor.joinChannel('b', 5));
      await server.publish('b', 'on b');
      await waitInPage(page, () => window.t.got.includes('on b'), null, { what: 'the message on b' });
      await publishAndExpect(page, server, 'a', ['a again'], ['a again'], {
        from: 0,
        read: () => window.t.got.filter((x) => x !== 'on b').slice(2),
      });
      const seen = (await page.evaluate(legacyGot)).length;
      await page.evaluate(() => Meteor.leaveChannel('a'));
      await server.publish('a', 'a after leaving');
      await publishAndExpect(page, server, 'b', ['b again'], ['b again'], { from: seen, read: legacyGot });
    } finally {
      await close();
      await server.stop();
    }
  });
});
