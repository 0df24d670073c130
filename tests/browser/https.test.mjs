// An https page using meteord over TLS (its self-signed certificate): the
// legacy frames and every modern transport, with nothing blocked as mixed
// content. Chromium trusts exactly that certificate's key
// (--ignore-certificate-errors-spki-list), nothing else.

import assert from 'node:assert/strict';
import { createHash, X509Certificate } from 'node:crypto';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { LEGACY_TEXTS, RAW_TEXTS, legacyGot, modernGot, publishAndExpect, setupLegacy, setupModern } from './lib/client.mjs';
import { launchBrowser, openPage, startMeteord, startPageServer, waitInPage, PAGE_HOST, SERVER_HOST } from './lib/harness.mjs';

const wire = LEGACY_TEXTS.map(([w]) => w);
const decoded = LEGACY_TEXTS.map(([, d]) => d);

describe('https pages with meteord over TLS', { concurrency: 2 }, () => {
  let dataDir;
  let server;
  let pages;
  let chromium;

  before(async () => {
    // One data directory, so every server in this file shares the
    // self-signed certificate made by the first.
    dataDir = await mkdtemp(path.join(tmpdir(), 'meteord-https-'));
    server = await startMeteord({
      dataDir,
      tls: true,
      args: ['-TLS', 'self-signed', '-TLSHostnames', `${SERVER_HOST} ${PAGE_HOST}`],
    });
    const cert = await readFile(path.join(dataDir, 'tls/self-signed.crt'), 'utf8');
    const key = await readFile(path.join(dataDir, 'tls/self-signed.key'), 'utf8');
    // The page server uses the same certificate: one key to trust.
    pages = await startPageServer({}, { tls: { cert, key } });
    const spki = new X509Certificate(cert).publicKey.export({ type: 'spki', format: 'der' });
    const pin = createHash('sha256').update(spki).digest('base64');
    chromium = await launchBrowser({ args: [`--ignore-certificate-errors-spki-list=${pin}`] });
  });

  after(async () => {
    await chromium?.close();
    await pages?.close();
    await server?.stop();
    await rm(dataDir, { recursive: true, force: true });
  });

  // stream runs as xhrinteractive in Chromium; longpoll goes through poll.html.
  for (const [mode, used, tweaks] of [['stream', 'xhrinteractive', {}], ['longpoll', 'longpoll', { minpollfreq: 50 }]]) {
    test(`legacy ${mode} mode through the https frames, awkward texts decoded`, async () => {
      const { page, problems, close } = await openPage(chromium.browser, pages);
      try {
        assert.ok(page.url().startsWith('https://'), page.url());
        const channel = `legacy-${mode}`;
        await server.publish(channel, 'backlog');
        await setupLegacy(page, server, { channel, mode, transport: 'legacy', backtrack: 5, tweaks });
        await waitInPage(page, () => window.t.got.length >= 1, null, { what: 'the backlog' });
        const seen = await publishAndExpect(page, server, channel, wire, decoded, { from: 1, read: legacyGot });
        assert.equal(seen, 1 + wire.length + 1);
        const t = await page.evaluate(() => ({ ...window.t, scheme: Meteor.scheme, used: Meteor.currentTransport() }));
        assert.equal(t.scheme, 'https', 'the scheme meteor.js was loaded with');
        assert.equal(t.used, used);
        assert.equal(t.pwned, undefined, 'a message text ran as code');
        assert.deepEqual(problems.filter((p) => !/document\.domain/.test(p)), []);
      } finally {
        await close();
      }
    });
  }

  for (const transport of ['ws', 'sse', 'poll']) {
    test(`${transport} over TLS, modern API: texts exactly as published`, async () => {
      const { page, problems, close } = await openPage(chromium.browser, pages);
      try {
        const channel = `modern-${transport}`;
        await server.publish(channel, 'backlog');
        await setupModern(page, server, { channel, transport, subscribe: { last: 5 } });
        await waitInPage(page, () => window.t.msgs.length >= 1, null, { what: 'the backlog' });
        await publishAndExpect(page, server, channel, RAW_TEXTS, RAW_TEXTS, { from: 1, read: modernGot });
        const used = await page.evaluate(() => window.t.transports.map(([name]) => name));
        assert.deepEqual([...new Set(used)], [transport]);
        assert.deepEqual(problems, []);
      } finally {
        await close();
      }
    });
  }
});
