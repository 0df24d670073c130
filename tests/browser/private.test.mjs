// A private channel in a real browser: the page's own backend (on another
// origin than meteord) mints short-lived signed tokens; meteor.js
// subscribes with one, and when it expires asks the page for a new one and
// resumes from the last id it saw - nothing missed, nothing twice.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import jwt from 'jsonwebtoken';

import { openPage, startMeteord, startPageServer, waitInPage, launchBrowser } from './lib/harness.mjs';

const SECRET = 'the backend and meteord share this';
const TRANSPORTS = ['ws', 'sse', 'poll'];

describe('private channels in the browser', { concurrency: 1 }, () => {
  for (const transport of TRANSPORTS) {
    test(`${transport}: tokens expire, the page renews them, no message is lost`, async () => {
      let minted = 0;
      // The application's backend: it knows the user and grants the room
      // for two seconds at a time (plus the five of clock skew allowed).
      const backend = await startPageServer({
        '/token': () => {
          minted++;
          const exp = Math.floor(Date.now() / 1000) + 2;
          return { type: 'text/plain', body: jwt.sign({ channels: ['room*'], sub: 'ann', exp }, SECRET) };
        },
      });
      const chromium = await launchBrowser();
      const server = await startMeteord({ args: ['-TokenSecret', SECRET, '-PrivateChannels', 'room*'] });
      const { page, problems, close } = await openPage(chromium.browser, backend);
      try {
        await page.addScriptTag({ url: `${server.url}/meteor.js` });
        await page.evaluate(async (cfg) => {
          const t = (window.t = { msgs: [], drops: [], errors: [] });
          const first = await fetch('/token').then((r) => r.text());
          const c = (window.c = Meteor.client({
            url: cfg.url,
            transport: cfg.transport,
            channels: { roomA: {} },
            token: first,
            tokenProvider: () => fetch('/token').then((r) => r.text()),
          }));
          c.on('message', (m) => t.msgs.push(m));
          c.on('drop', (d) => t.drops.push(d.reason));
          c.on('error', (e) => t.errors.push(String(e.message)));
          await c.subscribe('roomA');
        }, { url: server.url, transport });
        // Publish across several expiries.
        const texts = [];
        for (let i = 0; i < 36; i++) {
          texts.push(`message ${i}`);
          await server.publish('roomA', `message ${i}`);
          await new Promise((r) => setTimeout(r, 350));
        }
        await waitInPage(page, (n) => window.t.msgs.length >= n, texts.length, {
          what: 'every message',
          dump: () => window.t,
        });
        const t = await page.evaluate(() => window.t);
        assert.deepEqual(t.msgs.map((m) => m.text), texts, 'in order, none missing, none twice');
        assert.ok(minted >= 2, `the page renewed its token (${minted} minted)`);
        assert.ok(t.drops.some((d) => /token expired|401/.test(d)), `drops: ${t.drops}`);
        // The page holds no API token or secret: only short-lived grants.
        assert.ok(!(await page.content()).includes(SECRET));
        assert.deepEqual(problems.filter((p) => !/401|Failed to load/.test(p)), []);
      } finally {
        await close();
        await server.stop();
        await chromium.close();
        await backend.close();
      }
    });
  }
});
