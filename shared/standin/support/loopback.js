'use strict';
// Preloaded into kinesis-mock with `node --require loopback.js main.js` by
// the Go package standin.
//
// kinesis-mock 0.6.2 hard-codes the host 0.0.0.0 for both of its servers
// (plain and TLS). This rewrites a wildcard or missing host given to
// net.Server#listen (and so to http, https, tls and http2 servers, which
// inherit it) to SHARDLINE_BIND_HOST, 127.0.0.1 by default, so the mock is
// reachable from this machine only. It also refuses outgoing connections to
// anything but loopback addresses: the mock never needs one.
const net = require('net');

const host = process.env.SHARDLINE_BIND_HOST || '127.0.0.1';

function isWildcard(h) {
  return h === undefined || h === null || h === '' || h === '0.0.0.0' || h === '::';
}

// Connections accepted by this process's servers, so that SIGTERM can
// close them: kinesis-mock shuts down gracefully on SIGTERM (and, when it
// persists, saves its data last), but its HTTP server first waits up to 30
// seconds for open connections to go, and SDK clients keep idle
// connections open. Only destroy with an error ends them at once (a plain
// destroy or end leaves the 30 s wait).
const accepted = new Set();
function track(server) {
  if (server.__standinTracked) {
    return;
  }
  server.__standinTracked = true;
  server.on('connection', (socket) => {
    accepted.add(socket);
    socket.once('close', () => accepted.delete(socket));
  });
}
process.once('SIGTERM', () => {
  for (const socket of accepted) {
    socket.destroy(new Error('standin: shutting down'));
  }
});

const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  track(this);
  const first = args[0];
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    // listen(options[, backlog][, callback]); leave pipes and handles alone.
    if (first.path === undefined && first.fd === undefined &&
        first.handle === undefined && first._handle === undefined &&
        isWildcard(first.host)) {
      args[0] = Object.assign({}, first, { host });
    }
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    // listen(port[, host][, backlog][, callback])
    if (typeof args[1] === 'string') {
      if (isWildcard(args[1])) {
        args[1] = host;
      }
    } else {
      args.splice(1, 0, host);
    }
  }
  return listen.apply(this, args);
};

function isLoopback(h) {
  if (h === undefined || h === null || h === '' || h === 'localhost') {
    return true; // Node's default connect host is localhost
  }
  const ip = String(h).replace(/^\[|\]$/g, '');
  if (net.isIPv4(ip)) {
    return ip.startsWith('127.');
  }
  return ip === '::1' || /^::ffff:127\./i.test(ip);
}

const connect = net.Socket.prototype.connect;
net.Socket.prototype.connect = function (...args) {
  const first = args[0];
  let target;
  if (first !== null && typeof first === 'object' && !Array.isArray(first)) {
    target = first.path === undefined ? first.host : 'localhost';
  } else if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    target = typeof args[1] === 'string' ? args[1] : undefined;
  } else {
    target = 'localhost'; // a path: a Unix socket
  }
  if (!isLoopback(target)) {
    const err = new Error('standin: outgoing connection to ' + target + ' refused (loopback only)');
    err.code = 'ECONNREFUSED';
    process.nextTick(() => this.destroy(err));
    return this;
  }
  return connect.apply(this, args);
};
