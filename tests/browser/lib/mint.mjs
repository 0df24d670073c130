// Mint a JWT the way an application's backend would, with Node's
// jsonwebtoken library (a JWT implementation that is not meteord's), for
// the tests of signed subscribe tokens.
//
//   node tests/browser/lib/mint.mjs '{"claims": {...}, "secret": "s"}'
//   node tests/browser/lib/mint.mjs '{"claims": {...}, "key": "<PEM>", "alg": "RS256"}'
//   node tests/browser/lib/mint.mjs '{"keypair": "rsa" | "ec" | "ed25519"}'   -> {"private": PEM, "public": PEM}
//
// Prints the token (or the key pair as JSON) on standard output.

import { createPrivateKey, generateKeyPairSync, sign } from 'node:crypto';
import jwt from 'jsonwebtoken';

const ask = JSON.parse(process.argv[2]);

if (ask.keypair) {
  const options = {
    rsa: ['rsa', { modulusLength: 2048 }],
    ec: ['ec', { namedCurve: 'P-256' }],
    ed25519: ['ed25519', {}],
  }[ask.keypair];
  const { privateKey, publicKey } = generateKeyPairSync(options[0], {
    ...options[1],
    publicKeyEncoding: { type: 'spki', format: 'pem' },
    privateKeyEncoding: { type: 'pkcs8', format: 'pem' },
  });
  process.stdout.write(JSON.stringify({ private: privateKey, public: publicKey }));
} else if (ask.alg === 'EdDSA') {
  // jsonwebtoken has no EdDSA: the JWS by hand, signed by Node's crypto.
  const part = (value) => Buffer.from(JSON.stringify(value)).toString('base64url');
  const input = `${part({ alg: 'EdDSA', typ: 'JWT' })}.${part(ask.claims)}`;
  const signature = sign(null, Buffer.from(input), createPrivateKey(ask.key));
  process.stdout.write(`${input}.${signature.toString('base64url')}`);
} else if (ask.alg === 'none') {
  // jsonwebtoken signs nothing with "none": an attacker's unsigned token.
  process.stdout.write(jwt.sign(ask.claims, null, { algorithm: 'none' }));
} else if (ask.secret !== undefined) {
  process.stdout.write(jwt.sign(ask.claims, ask.secret, { algorithm: ask.alg || 'HS256' }));
} else {
  process.stdout.write(jwt.sign(ask.claims, ask.key, { algorithm: ask.alg }));
}
