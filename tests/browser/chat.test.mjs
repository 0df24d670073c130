// A chat room in a real browser: two pages (two users) on the application's
// own origin, each with a token from the application's backend that grants
// the room and publishing to it. They publish through meteor.js (one
// through meteor.mjs), see each other's messages, and show who is present;
// when one leaves, the other sees it go.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import jwt from 'jsonwebtoken';

import { openPage, startMeteord, startPageServer, waitInPage, launchBrowser } from './lib/harness.mjs';

const SECRET = 'chat backend secret';

// The chat page: a member list and the messages, drawn from the client's
// events; `say` publishes what the user typed.
async function joinChat(page, cfg) {
  await page.evaluate(async (cfg) => {
    const t = (window.t = { msgs: [], errors: [] });
    const token = await fetch(`/token?user=${cfg.user}`).then((r) => r.text());
    const make = cfg.module
      ? (await import(`${cfg.url}/meteor.mjs`)).client
      : (options) => Meteor.client(options);
    document.body.innerHTML = '<ul id="who"></ul><ol id="said"></ol>';
    const c = (window.c = make({ url: cfg.url, transport: cfg.transport, token }));
    const draw = () => {
      document.getElementById('who').innerHTML = '';
      for (const m of c.members('room')) {
        const li = document.createElement('li');
        li.textContent = m.user;
        document.getElementById('who').appendChild(li);
      }
    };
    c.on('presence', draw);
    c.on('join', draw);
    c.on('leave', draw);
    c.on('message', (m) => {
      t.msgs.push(`${m.text}`);
      const li = document.createElement('li');
      li.textContent = m.text;
      document.getElementById('said').appendChild(li);
    });
    c.on('error', (e) => t.errors.push(String(e.message)));
    // Presence may come over SSE; publishing always goes over a WebSocket
    // (a second client with no channel, connected by its first publish).
    const writer = cfg.transport === 'ws' ? c : make({ url: cfg.url, transport: 'ws', token });
    window.say = (text) => writer.publish('room', text);
    await c.subscribe('room', { presence: true });
  }, cfg);
}

const who = (page) => page.$$eval('#who li', (items) => items.map((li) => li.textContent).sort());

describe('chat in the browser: publish and presence', { concurrency: 1 }, () => {
  for (const transport of ['ws', 'sse']) {
    test(`two users chat (presence over ${transport}, publishing over ws)`, async () => {
      const backend = await startPageServer({
        '/token': (req) => {
          const user = new URL(req.url, 'http://x').searchParams.get('user');
          const exp = Math.floor(Date.now() / 1000) + 600;
          return {
            type: 'text/plain',
            body: jwt.sign({ sub: user, channels: ['room'], publish: ['room'], exp }, SECRET),
          };
        },
      });
      const chromium = await launchBrowser();
      const server = await startMeteord({
        args: ['-TokenSecret', SECRET, '-PrivateChannels', 'room', '-PresenceLeaveDelay', '1'],
      });
      const ann = await openPage(chromium.browser, backend);
      const bob = await openPage(chromium.browser, backend);
      try {
        await ann.page.addScriptTag({ url: `${server.url}/meteor.js` });
        await joinChat(ann.page, { url: server.url, user: 'ann', transport, module: false });
        await joinChat(bob.page, { url: server.url, user: 'bob', transport: 'ws', module: true });

        await waitInPage(ann.page, () => document.querySelectorAll('#who li').length === 2, null, { what: 'bob in ann\'s list' });
        await waitInPage(bob.page, () => document.querySelectorAll('#who li').length === 2, null, { what: 'ann in bob\'s list' });
        assert.deepEqual(await who(ann.page), ['ann', 'bob']);
        assert.deepEqual(await who(bob.page), ['ann', 'bob']);

        const id1 = await ann.page.evaluate(() => window.say('hi bob, it is <ann> & "friends"'));
        const id2 = await bob.page.evaluate(() => window.say('hello ann'));
        assert.ok(Number.isInteger(id1) && id2 > id1, `ids ${id1} ${id2}`);
        for (const p of [ann.page, bob.page]) {
          await waitInPage(p, () => window.t.msgs.length >= 2, null, { what: 'both messages' });
          assert.deepEqual(await p.$$eval('#said li', (l) => l.map((x) => x.textContent)), [
            'hi bob, it is <ann> & "friends"',
            'hello ann',
          ]);
        }
        // Not granted: the channel the token does not name.
        const refused = await bob.page.evaluate(() => window.c.publish('elsewhere', 'x').then(
          () => null,
          (e) => ({ status: e.status, message: e.message }),
        ));
        assert.equal(refused.status, 403, JSON.stringify(refused));

        // Bob closes his tab: ann sees him leave.
        await bob.close();
        await waitInPage(ann.page, () => document.querySelectorAll('#who li').length === 1, null, { what: 'bob leaving' });
        assert.deepEqual(await who(ann.page), ['ann']);
        assert.deepEqual(ann.problems.filter((p) => !/Failed to load/.test(p)), []);
      } finally {
        await ann.close();
        await bob.close().catch(() => {});
        await server.stop();
        await chromium.close();
        await backend.close();
      }
    });
  }
});
