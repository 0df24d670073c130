/*
 * meteor.mjs - meteor.js as an ES module, with no build step: the classic
 * script is also valid module code, so this file runs it and re-exports
 * what it defines (it also sets the global Meteor, as the script does).
 *
 *   import Meteor, { client } from "http://data.example.com:4670/meteor.mjs";
 *   const c = client({ channels: { demo: { last: 10 } } });
 *   c.on("message", (m) => console.log(m.id, m.channel, m.text));
 *
 * A client made without `url` talks to the server this module came from.
 */
import './meteor.js';

const Meteor = globalThis.Meteor;
Meteor._setScriptUrl(new URL('./meteor.js', import.meta.url).href);

export default Meteor;
export { Meteor };
export const Client = Meteor.Client;
export const decodeLegacyText = Meteor.decodeLegacyText;
export function client(options) {
  return Meteor.client(options);
}
export function publish(channel, text) {
  return Meteor.publish(channel, text);
}
