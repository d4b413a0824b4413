'use strict';
/**
 * Loaded with `--require` into the fake, the API and the worker by timeline.js: records every
 * socket write and read, and every HTTP request a server receives, with CLOCK_MONOTONIC
 * nanoseconds (process.hrtime.bigint(), one clock for every process of the machine), into
 * `$TIMELINE_DIR/<role>-<pid>.log`, one line per event: `ns role kind remotePort localPort
 * bytes`. kind: W (a write leaves the process), R (bytes arrive on a socket that emits `data`),
 * Q (an HTTP server has parsed a request; server sockets do not emit `data`). Events are kept
 * in memory and written every 2 s and at exit, so that recording costs no system call.
 */
const fs = require('node:fs');
const http = require('node:http');
const net = require('node:net');

const role = process.env.TIMELINE_ROLE || 'process';
const dir = process.env.TIMELINE_DIR;
const events = [];
const remote = (socket) => socket.remotePort ?? 0;
const local = (socket) => socket.localPort ?? 0;

const writeGeneric = net.Socket.prototype._writeGeneric;
net.Socket.prototype._writeGeneric = function (writev, data, encoding, cb) {
  let bytes = 0;
  if (writev) for (const c of data) bytes += (c.chunk ?? c).length;
  else bytes = data.length;
  events.push(`${process.hrtime.bigint()} ${role} W ${remote(this)} ${local(this)} ${bytes}`);
  return writeGeneric.call(this, writev, data, encoding, cb);
};

const socketEmit = net.Socket.prototype.emit;
net.Socket.prototype.emit = function (event, chunk) {
  if (event === 'data') events.push(`${process.hrtime.bigint()} ${role} R ${remote(this)} ${local(this)} ${chunk.length}`);
  return socketEmit.apply(this, arguments);
};

const serverEmit = http.Server.prototype.emit;
http.Server.prototype.emit = function (event, req) {
  if (event === 'request') events.push(`${process.hrtime.bigint()} ${role} Q ${remote(req.socket)} ${local(req.socket)} 0`);
  return serverEmit.apply(this, arguments);
};

function flush() {
  if (!dir || events.length === 0) return;
  fs.appendFileSync(`${dir}/${role}-${process.pid}.log`, events.join('\n') + '\n');
  events.length = 0;
}
setInterval(flush, 2000).unref();
process.on('exit', flush);
for (const signal of ['SIGTERM', 'SIGINT']) process.prependListener(signal, flush);
