// Preloaded into kinesis-mock (node --require), which has no bind-address option:
// every server it opens listens on 127.0.0.1 only, never on all interfaces.
'use strict';
const net = require('net');
const listen = net.Server.prototype.listen;
net.Server.prototype.listen = function (...args) {
  const first = args[0];
  if (typeof first === 'number' || (typeof first === 'string' && /^\d+$/.test(first))) {
    const rest = args.slice(1).filter((a) => typeof a === 'function' || typeof a === 'number');
    return listen.call(this, { port: Number(first), host: '127.0.0.1' }, ...rest.filter((a) => typeof a === 'function'));
  }
  if (first && typeof first === 'object' && 'port' in first) {
    return listen.call(this, { ...first, host: '127.0.0.1' }, ...args.slice(1));
  }
  return listen.apply(this, args);
};
