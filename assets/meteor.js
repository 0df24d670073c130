/* meteor.js — placeholder. The full client (legacy Meteor API over
   WebSocket, EventSource and long-poll transports) replaces this file. */
var Meteor = window.Meteor || { version: "placeholder" };
