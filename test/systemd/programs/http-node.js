// A plain Node.js HTTP service for the hardening tests: listens on 127.0.0.1:$PORT and, per request, uses what
// ordinary services use (crypto, zlib, temp files, its state directory, DNS, worker-free timers), reporting each.
const http = require('node:http');
const crypto = require('node:crypto');
const zlib = require('node:zlib');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const dns = require('node:dns');

const probe = (fn) => {
  try {
    return fn();
  } catch (error) {
    return `error: ${error.code ?? error.message}`;
  }
};

http
  .createServer((_req, res) => {
    dns.lookup('localhost', (dnsError, address) => {
      const tmp = path.join(os.tmpdir(), `probe-${process.pid}`);
      const body = {
        runtime: 'node',
        version: process.version,
        uuid: probe(() => crypto.randomUUID().length),
        gzip: probe(() => zlib.gunzipSync(zlib.gzipSync('x'.repeat(1000))).length),
        tmp: probe(() => {
          fs.writeFileSync(tmp, 'x');
          fs.rmSync(tmp);
          return 'ok';
        }),
        state: probe(() => {
          if (!process.env.STATE_DIRECTORY) return 'none';
          fs.writeFileSync(path.join(process.env.STATE_DIRECTORY, 'probe'), 'x');
          return 'ok';
        }),
        cpus: probe(() => os.cpus().length),
        parallelism: probe(() => os.availableParallelism()),
        interfaces: probe(() => Object.keys(os.networkInterfaces()).length),
        dns: dnsError ? `error: ${dnsError.code}` : address,
      };
      res.setHeader('content-type', 'application/json');
      res.end(JSON.stringify(body));
    });
  })
  .listen(Number(process.env.PORT), '127.0.0.1');
