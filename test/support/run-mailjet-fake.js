// A local Mailjet to try the bridge against by hand (the one the tests use, test/support/mailjet-fake.ts):
//   node test/support/run-mailjet-fake.js [port] [messages]
// It listens on 127.0.0.1:<port> (4010), with the keys MJ_FAKE_KEY / MJ_FAKE_SECRET (fake-key /
// fake-secret-0123), and holds <messages> (20) messages of the last hour, each sent and opened,
// every fourth also clicked. Point MAILJET_API_URL at it.
const Module = require('node:module');
const path = require('node:path');
const { transformSync } = require('@swc/core');

const root = path.join(__dirname, '../..');
// TypeScript compiled as it is loaded, and @app/<lib> resolved to libs/<lib>/src, as in tsconfig.json.
require.extensions['.ts'] = (module, filename) => {
  const { code } = transformSync(require('node:fs').readFileSync(filename, 'utf8'), {
    filename,
    jsc: { parser: { syntax: 'typescript' }, target: 'es2022' },
    module: { type: 'commonjs' },
  });
  module._compile(code, filename);
};
const resolve = Module._resolveFilename;
Module._resolveFilename = function (request, ...rest) {
  const lib = /^@app\/([a-z-]+)$/.exec(request);
  return resolve.call(this, lib ? path.join(root, 'libs', lib[1], 'src') : request, ...rest);
};

const { MailjetFake } = require('./mailjet-fake.ts');

async function main() {
  const port = Number(process.argv[2] ?? 4010);
  const count = Number(process.argv[3] ?? 20);
  const fake = new MailjetFake({ apiKey: process.env.MJ_FAKE_KEY ?? 'fake-key', apiSecret: process.env.MJ_FAKE_SECRET ?? 'fake-secret-0123' });
  const start = Math.floor(Date.now() / 1000) - 3600;
  fake.addMessages(
    Array.from({ length: count }, (_, i) => {
      const arrived = start + i * Math.floor(3000 / count);
      return {
        ID: 1152921504606846976n + BigInt(i),
        ArrivedAt: new Date(arrived * 1000),
        ContactAlt: `reader-${i}@example.com`,
        Subject: `Message ${i}`,
        history: [
          { EventAt: arrived + 1, EventType: 'sent' },
          { EventAt: arrived + 60, EventType: 'opened', Useragent: 'Mozilla/5.0' },
          ...(i % 4 === 0 ? [{ EventAt: arrived + 120, EventType: 'clicked' }] : []),
        ],
        clicks: i % 4 === 0 ? [{ ClickedAt: new Date((arrived + 120) * 1000), Url: `https://example.com/${i}` }] : [],
      };
    }),
  );
  await fake.start(port);
  console.log(`fake Mailjet on ${fake.url} with ${count} messages from ${new Date(start * 1000).toISOString()}; Ctrl-C stops it`);
}

main().catch((error) => {
  console.error(error);
  process.exit(1);
});
