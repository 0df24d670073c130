// meteor.js over the modern endpoints (/ws, /sse, /poll) in headless
// Chromium, through both APIs: the legacy Meteor object (texts decoded as
// the original client delivered them) and Meteor.client (texts exactly as
// published). Page on www.example.test, server on data.example.test: these
// transports are cross-origin (CORS) and need no document.domain.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import {
  LEGACY_TEXTS,
  RAW_TEXTS,
  checkModernMessages,
  legacyGot,
  modernGot,
  publishAndExpect,
  setupLegacy,
  setupModern,
} from './lib/client.mjs';
import { openPage, startMeteord, waitInPage, browserSuite } from './lib/harness.mjs';

const wire = LEGACY_TEXTS.map(([w]) => w);
const decoded = LEGACY_TEXTS.map(([, d]) => d);
const TRANSPORTS = ['ws', 'sse', 'poll'];

describe('modern transports', { concurrency: 3 }, () => {
  const ctx = browserSuite();

  // Run `body` with a fresh server and page; always clean up.
  async function withPage(serverOptions, body) {
    const servers = [await startMeteord(serverOptions)];
    const { page, problems, close } = await openPage(ctx.chromium.browser, ctx.pages);
    try {
      await body({ server: servers[0], page, problems, servers });
    } finally {
      await close();
      for (const s of servers) await s.stop();
    }
  }

  for (const transport of TRANSPORTS) {
    test(`${transport}, legacy API: backlog, then awkward texts decoded`, () =>
      withPage({}, async ({ server, page, problems }) => {
        await server.publish('demo', 'backlog one');
        await server.publish('demo', 'backlog \\"two\\"');
        await server.publish('other', 'not for us');
        await setupLegacy(page, server, { transport, backtrack: 10 });
        await waitInPage(page, () => window.t.got.length >= 2, null, { what: 'the backlog' });
        assert.deepEqual(await page.evaluate(legacyGot), ['backlog one', 'backlog "two"']);
        const seen = await publishAndExpect(page, server, 'demo', wire, decoded, { from: 2, read: legacyGot });
        await publishAndExpect(page, server, 'demo', ['one \\u2603 more'], ['one \u2603 more'], { from: seen, read: legacyGot });
        const t = await page.evaluate(() => ({ ...window.t, status: Meteor.status, used: Meteor.currentTransport() }));
        assert.equal(t.used, transport);
        assert.equal(t.pwned, undefined, 'a message text ran as code');
        assert.ok(t.argc.every((n) => n === 1), 'process gets exactly one argument, the text');
        assert.equal(t.statuses[0], 1);
        assert.ok(t.statuses.includes(4) && t.status === 5, `statuses ${t.statuses}`);
        assert.deepEqual(t.modes, []);
        assert.deepEqual(problems, []);
      }));

    test(`${transport}, modern API: backlog, then texts exactly as published`, () =>
      withPage({}, async ({ server, page, problems }) => {
        const first = await server.publish('demo', 'backlog with \\"escapes\\" kept');
        await server.publish('demo', '</script> raw');
        await setupModern(page, server, { transport, subscribe: { last: 10 } });
        await waitInPage(page, () => window.t.msgs.length >= 2, null, { what: 'the backlog' });
        const sub = await page.evaluate(() => window.c.subscribe('demo'));
        assert.equal(sub.channel, 'demo');
        const seen = await publishAndExpect(page, server, 'demo', RAW_TEXTS, RAW_TEXTS, { from: 2, read: modernGot });
        const t = await page.evaluate(() => ({ ...window.t, transport: window.c.transport, status: window.c.status, lastId: window.c.lastId }));
        assert.deepEqual(t.msgs.slice(0, 2).map((m) => [m.id, m.text]), [[first, 'backlog with \\"escapes\\" kept'], [first + 1, '</script> raw']]);
        assert.equal(t.lastId, t.msgs.at(-1).id);
        assert.equal(t.transport, transport);
        assert.equal(t.status, 'open');
        assert.deepEqual(t.transports, [[transport, 'selected']]);
        assert.deepEqual(t.drops, []);
        assert.equal(t.pwned, undefined);
        assert.equal(seen, RAW_TEXTS.length + 3);
        await checkModernMessages(page, 'demo');
        assert.deepEqual(problems, []);
      }));

    test(`${transport}: a server-side disconnect (kick by host id) loses and repeats nothing`, () =>
      withPage({}, async ({ server, page }) => {
        await server.publish('demo', 'before');
        await setupModern(page, server, { transport, subscribe: { last: 10 } });
        await waitInPage(page, () => window.t.msgs.length === 1 && window.c.status === 'open', null, { what: 'connected' });
        let seen = await publishAndExpect(page, server, 'demo', ['live one'], ['live one'], { from: 1, read: modernGot });
        const hostid = await page.evaluate(() => window.c.hostid);
        assert.equal((await server.get(`/disconnect/${hostid}`)).status, 200);
        // published while the client is (or is about to be) away
        seen = await publishAndExpect(page, server, 'demo', ['during 1', 'during 2', 'during 3'], ['during 1', 'during 2', 'during 3'], {
          from: seen,
          read: modernGot,
        });
        if (transport !== 'poll') {
          // a long-poll holds no subscription between requests: nothing to kick
          await waitInPage(page, () => window.t.drops.length >= 1, null, { what: 'the kick' });
        }
        await waitInPage(page, () => window.c.status === 'open', null, { what: 'reconnected' });
        await publishAndExpect(page, server, 'demo', ['after'], ['after'], { from: seen, read: modernGot });
        await checkModernMessages(page, 'demo');
      }));

    test(`${transport}: server restart with persistence: resumes exactly where it was`, () =>
      withPage({}, async ({ server, page, servers }) => {
        await server.publish('demo', 'old one');
        await server.publish('demo', 'old two');
        await setupLegacy(page, server, { transport, backtrack: 10, tweaks: { pingtimeout: 60000 } });
        await waitInPage(page, () => window.t.got.length === 2, null, { what: 'the backlog' });
        await server.kill(); // a crash: no goodbye
        const restarted = await startMeteord({ subscriberPort: server.subPort, dataDir: server.dataDir });
        servers.push(restarted);
        // Published at once, most likely before the client is back: ids
        // continue across the restart, so it resumes without loss or repeat.
        const seen = await publishAndExpect(page, restarted, 'demo', ['new \\"one\\"', 'new two'], ['new "one"', 'new two'], {
          from: 2,
          read: legacyGot,
        });
        assert.ok((await page.evaluate(() => window.t.resets)) >= 1, 'the reset callback saw the drop');
        await publishAndExpect(page, restarted, 'demo', ['newer'], ['newer'], { from: seen, read: legacyGot });
      }));

    // Without persistence: the page holds messages 0 to 2, then the server
    // dies and an empty one starts on its port. Returns the new server.
    async function backlogThenEmptyRestart({ server, page, servers }, beforeKill = async () => {}) {
      await server.publish('demo', 'old one');
      await server.publish('demo', 'old two');
      await server.publish('demo', 'old three');
      await setupModern(page, server, { transport, subscribe: { last: 10 } });
      await waitInPage(page, () => window.t.msgs.length === 3, null, { what: 'the backlog' });
      await beforeKill();
      await server.kill();
      const restarted = await startMeteord({ subscriberPort: server.subPort, args: ['-Persistence', 'off'] });
      servers.push(restarted);
      return restarted;
    }

    // Two new messages and the sentinel (ids 0 to 2 again, up to the old
    // cursor) all reach the page.
    async function newIdsArrive(page, restarted) {
      await publishAndExpect(page, restarted, 'demo', ['fresh one', 'fresh two'], ['fresh one', 'fresh two'], {
        from: 3,
        read: modernGot,
      });
      const ids = await page.evaluate(() => window.t.msgs.map((m) => m.id));
      assert.deepEqual(ids.slice(3), [0, 1, 2]);
    }

    test(`${transport}: server restart without persistence (ids start again at 0): reconnects and receives new messages`, () =>
      withPage({ args: ['-Persistence', 'off'] }, async (ctx) => {
        const { page } = ctx;
        const restarted = await backlogThenEmptyRestart(ctx);
        // Without persistence the new server's ids begin again at 0, below
        // the ids the client has seen. The client notices (the channel's
        // newest id is below its cursor, or the channel is empty) and takes
        // everything the new server holds. Limitation: messages published
        // before the client is back, numerous enough that the newest id
        // passes its old cursor, look like ones it has seen and are missed -
        // so this test publishes after the client has reconnected.
        await waitInPage(page, () => window.t.drops.length >= 1 && window.c.status === 'open', null, { what: 'reconnected' });
        await newIdsArrive(page, restarted);
      }));

    if (transport !== 'ws') {
      // SSE and long-poll learn of a restart from a probe request. When the
      // probe finds no server (here: the first one after the restart is
      // made to fail, while connections go through) the client must probe
      // again, not resume from ids the new server does not mean.
      test(`${transport}: a probe that finds no server is tried again before resuming`, () =>
        withPage({ args: ['-Persistence', 'off'] }, async (ctx) => {
          const { page } = ctx;
          let probes = 0;
          let failedProbes = 0;
          const restarted = await backlogThenEmptyRestart(ctx, async () => {
            await page.setRequestInterception(true);
            page.on('request', (request) => {
              if (request.url().includes('?timeout=0')) {
                probes++;
                if (probes === 1) {
                  failedProbes++;
                  return request.abort('connectionrefused');
                }
              }
              return request.continue();
            });
          });
          await waitInPage(page, () => window.c.status === 'open', null, { what: 'reconnected' });
          assert.equal(failedProbes, 1);
          assert.ok(probes >= 2, `probes: ${probes}`);
          await newIdsArrive(page, restarted);
        }));
    }

    test(`${transport}: subscribe and unsubscribe while connected`, () =>
      withPage({}, async ({ server, page }) => {
        await setupModern(page, server, { transport, channel: 'a', subscribe: {} });
        await page.evaluate(() => window.c.subscribe('a')); // resolves once the server has it
        let seen = await publishAndExpect(page, server, 'a', ['on a'], ['on a'], { from: 0, read: modernGot });
        // a live subscription starts after the channel's newest message
        await server.publish('b', 'b before subscribing');
        const info = await page.evaluate(() => window.c.subscribe('b'));
        assert.equal(info.channel, 'b');
        await server.publish('b', 'on b');
        seen = await publishAndExpect(page, server, 'a', ['a again'], ['on b', 'a again'], { from: seen, read: modernGot });
        await page.evaluate(() => window.c.unsubscribe('a'));
        await server.publish('a', 'a after unsubscribing');
        await publishAndExpect(page, server, 'b', ['b again'], ['b again'], { from: seen, read: modernGot });
        const channels = await page.evaluate(() => window.c.channels());
        assert.deepEqual(channels, ['b']);
      }));
  }

  test('auto: both APIs pick WebSocket by default', () =>
    withPage({}, async ({ server, page }) => {
      await page.addScriptTag({ url: `${server.url}/meteor.js` });
      await page.evaluate(() => {
        window.t = { got: [], modern: [] };
        // nothing set but the channel: host and port come from the script's URL
        Meteor.registerEventCallback('process', (x) => window.t.got.push(x));
        Meteor.joinChannel('demo', 0);
        Meteor.connect();
        window.c = Meteor.client({ channels: ['demo'] });
        window.c.on('message', (m) => window.t.modern.push(m.text));
      });
      // both are live-only subscriptions: wait until the server has them
      await waitInPage(page, () => Meteor.status >= 4, null, { what: 'the legacy API to connect' });
      await page.evaluate(() => window.c.subscribe('demo'));
      await publishAndExpect(page, server, 'demo', ['x \\"y\\"'], ['x "y"'], { from: 0, read: legacyGot });
      const sentinel = (await page.evaluate(legacyGot)).at(-1);
      await waitInPage(page, (s) => window.t.modern.includes(s), sentinel, { what: 'the modern client' });
      assert.deepEqual(await page.evaluate(() => window.t.modern), ['x \\"y\\"', sentinel]);
      const used = await page.evaluate(() => [Meteor.currentTransport(), window.c.transport, Meteor.mode, Meteor.host]);
      assert.deepEqual(used, ['ws', 'ws', 'stream', 'data.example.test']);
    }));

  test('ws: a ping timeout falls back to long-poll (changemode "poll") and keeps delivering', () =>
    // pings every 60 s, the page gives up after 700 ms without a frame
    withPage({ args: ['-PingInterval', '60'] }, async ({ server, page }) => {
      await server.publish('demo', 'before');
      await setupLegacy(page, server, { backtrack: 5, tweaks: { pingtimeout: 700 } });
      await waitInPage(page, () => window.t.modes.length === 1, null, { what: 'changemode' });
      const state = await page.evaluate(() => ({ modes: window.t.modes, used: Meteor.currentTransport(), got: window.t.got }));
      assert.deepEqual(state, { modes: ['poll'], used: 'poll', got: ['before'] });
      await publishAndExpect(page, server, 'demo', wire.slice(0, 4), decoded.slice(0, 4), { from: 1, read: legacyGot });
    }));

  test('a WebSocket that cannot connect gives way to SSE', () =>
    withPage({}, async ({ server, page }) => {
      await setupModern(page, server, {
        subscribe: { last: 1 },
        options: { minDelay: 20 },
        before: () => {
          window.WebSocket = function BlockedWebSocket() {
            throw new Error('blocked by the test');
          };
        },
      });
      await waitInPage(page, () => window.c.transport === 'sse' && window.c.status === 'open', null, { what: 'sse' });
      await publishAndExpect(page, server, 'demo', ['via sse'], ['via sse'], { from: 0, read: modernGot });
      const t = await page.evaluate(() => window.t.transports);
      assert.deepEqual(t, [['ws', 'selected'], ['sse', 'ws failed']]);
    }));

  test('without WebSocket and EventSource the legacy API long-polls', () =>
    withPage({}, async ({ server, page }) => {
      await setupLegacy(page, server, {
        backtrack: 0,
        before: () => {
          window.WebSocket = undefined;
          window.EventSource = undefined;
        },
      });
      await waitInPage(page, () => Meteor.status === 4, null, { what: 'connected' });
      await publishAndExpect(page, server, 'demo', wire.slice(0, 3), decoded.slice(0, 3), { from: 0, read: legacyGot });
      assert.equal(await page.evaluate(() => Meteor.currentTransport()), 'poll');
    }));
});
