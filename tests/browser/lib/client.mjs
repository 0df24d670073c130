// Driving meteor.js inside a test page, and the texts every mode must carry.

import assert from 'node:assert/strict';

import { SERVER_HOST, waitInPage } from './harness.mjs';

/**
 * Awkward texts as a legacy publisher sends them (escaped as the body of a
 * JavaScript string, because the /push modes paste them into
 * p(id,"channel","text")), with what the legacy "process" callback must get.
 */
export const LEGACY_TEXTS = [
  ['plain words', 'plain words'],
  ['say \\"hi\\" and \\\'bye\\\'', 'say "hi" and \'bye\''],
  ['back\\\\slash, and \\\\n is not a newline', 'back\\slash, and \\n is not a newline'],
  ['<\\/script><script>window.t.pwned = 1<\\/script>', '</script><script>window.t.pwned = 1</script>'],
  ['line one\\nline two\\r\\nline three\\ttabbed', 'line one\nline two\r\nline three\ttabbed'],
  ['separators \\u2028 and \\u2029, raw \u2028 too', 'separators \u2028 and \u2029, raw \u2028 too'],
  ['caf\u00e9 \u2013 na\u00efve \u2615 \u65e5\u672c\u8a9e \u{1F600}', 'caf\u00e9 \u2013 na\u00efve \u2615 \u65e5\u672c\u8a9e \u{1F600}'],
  ['escapes \\u00e9 \\x41 \\u{1F680} \\/ \\0end', 'escapes \u00e9 A \u{1F680} / \u0000end'],
  ['   leading spaces stay', '   leading spaces stay'],
];

/** Texts for the modern API, which must arrive exactly as published. */
export const RAW_TEXTS = [
  'plain words',
  'say "hi" and \'bye\'',
  'back\\slash, and \\n stays two characters',
  '</script><script>window.t.pwned = 1</script>',
  '<\\/script> stays escaped, {"json":"inside"}\ttab',
  'separators \u2028 and \u2029',
  'caf\u00e9 \u2013 na\u00efve \u2615 \u65e5\u672c\u8a9e \u{1F600}',
  '   leading spaces stay',
];

let sentinels = 0;

/**
 * Publish `texts` (wire form) on `channel`, then a sentinel; wait until the
 * page has seen the sentinel and check that, from index `from` on, it saw
 * exactly `expected` followed by the sentinel: nothing lost, nothing twice,
 * nothing out of order. `read` returns the page's received texts.
 */
export async function publishAndExpect(page, server, channel, texts, expected, { from, read, timeout = 20000 }) {
  for (const text of texts) await server.publish(channel, text);
  const sentinel = `sentinel-${++sentinels}-${Date.now()}`;
  await server.publish(channel, sentinel);
  await waitInPage(page, ([fn, s]) => new Function(`return (${fn})`)()().includes(s), [read.toString(), sentinel], {
    timeout,
    what: `sentinel ${sentinel} on ${channel}`,
  });
  const got = await page.evaluate((fn) => new Function(`return (${fn})`)()(), read.toString());
  assert.deepEqual(got.slice(from), [...expected, sentinel]);
  return got.length;
}

/** The legacy texts the page's process callback collected. */
export const legacyGot = () => window.t.got;

/** The texts of the modern client's message events. */
export const modernGot = () => window.t.msgs.map((m) => m.text);

/**
 * Load /meteor.js from the server under test and connect through the legacy
 * API. Records everything in window.t.
 */
export async function setupLegacy(page, server, { channel = 'demo', backtrack = 10, mode, transport, tweaks = {}, before } = {}) {
  await page.addScriptTag({ url: `${server.url}/meteor.js` });
  if (before) await page.evaluate(before);
  await page.evaluate((cfg) => {
    const t = (window.t = { got: [], argc: [], statuses: [], modes: [], eofs: 0, resets: 0 });
    Meteor.host = cfg.host;
    Meteor.port = cfg.port;
    if (cfg.mode) Meteor.mode = cfg.mode;
    if (cfg.transport) Meteor.transport = cfg.transport;
    Object.assign(Meteor, cfg.tweaks);
    Meteor.registerEventCallback('process', function (text) {
      t.got.push(text);
      t.argc.push(arguments.length);
    });
    Meteor.registerEventCallback('statuschanged', (s) => t.statuses.push(s));
    Meteor.registerEventCallback('changemode', (m) => t.modes.push(m));
    Meteor.registerEventCallback('eof', () => { t.eofs++; });
    Meteor.registerEventCallback('reset', () => { t.resets++; });
    Meteor.joinChannel(cfg.channel, cfg.backtrack);
    Meteor.connect();
  }, { host: SERVER_HOST, port: server.subPort, channel, backtrack, mode, transport, tweaks });
}

/** Connect through the modern API; records everything in window.t. */
export async function setupModern(page, server, { channel = 'demo', subscribe = { last: 10 }, transport, options = {}, before } = {}) {
  await page.addScriptTag({ url: `${server.url}/meteor.js` });
  if (before) await page.evaluate(before);
  await page.evaluate((cfg) => {
    const t = (window.t = { msgs: [], statuses: [], transports: [], drops: [], subscribed: [] });
    const c = (window.c = Meteor.client({
      url: cfg.url,
      transport: cfg.transport,
      channels: { [cfg.channel]: cfg.subscribe },
      ...cfg.options,
    }));
    c.on('message', (m) => t.msgs.push(m));
    c.on('status', (s) => t.statuses.push(s));
    c.on('transport', (name, reason) => t.transports.push([name, reason]));
    c.on('drop', (d) => t.drops.push(d));
    c.on('subscribed', (s) => t.subscribed.push(s));
  }, { url: server.url, channel, subscribe, transport, options });
}

/** Check the invariants of every modern message: ids increase, fields typed. */
export async function checkModernMessages(page, channel) {
  const msgs = await page.evaluate(() => window.t.msgs);
  let last = -Infinity;
  for (const m of msgs) {
    assert.equal(m.channel, channel);
    assert.equal(typeof m.id, 'number');
    assert.equal(typeof m.ts, 'number');
    assert.ok(m.id > last, `ids must increase: ${m.id} after ${last}`);
    last = m.id;
  }
}
