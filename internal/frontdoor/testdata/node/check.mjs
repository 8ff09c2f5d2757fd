// The gateway through the official `openai` npm package (openai-node), as a Node user calls it.
// Run by scripts/node-sdk-check.sh and by TestNodeSDK (internal/frontdoor/node_test.go).
//
// Environment: OPENAI_NODE_MODULES (the node_modules holding `openai`), IMAGEGW_BASE_URL (ending
// in /v1), IMAGEGW_KEY (any model), IMAGEGW_LIMITED_KEY (ipm 5). Exits non-zero on any failure.
import { join } from 'node:path';
import { pathToFileURL } from 'node:url';
import assert from 'node:assert/strict';

const env = (name) => {
  const v = process.env[name];
  if (!v) throw new Error(`${name} is not set`);
  return v;
};
const { OpenAI } = await import(pathToFileURL(join(env('OPENAI_NODE_MODULES'), 'openai', 'index.mjs')).href);
const baseURL = env('IMAGEGW_BASE_URL');
const client = new OpenAI({ baseURL, apiKey: env('IMAGEGW_KEY'), maxRetries: 0 });

const PNG = Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]);
const pngSize = (b64) => {
  const b = Buffer.from(b64, 'base64');
  assert.ok(b.subarray(0, 8).equals(PNG), 'b64_json is not a PNG');
  return `${b.readUInt32BE(16)}x${b.readUInt32BE(20)}`;
};

let plainCost; // X-Imagegw-Cost of the non-streaming generation

const checks = {
  // An id with '/': the SDK percent-encodes it, the gateway decodes it.
  async 'models.retrieve with a slash'() {
    const m = await client.models.retrieve('sandbox/sandbox-image');
    assert.equal(m.id, 'sandbox/sandbox-image');
    assert.equal(m.object, 'model');
  },

  async 'images.generate b64_json'() {
    const { data: res, response } = await client.images
      .generate({ model: 'sandbox-image', prompt: 'a lighthouse at dusk', n: 1, size: '256x256', response_format: 'b64_json' })
      .withResponse();
    assert.equal(res.data.length, 1);
    assert.equal(pngSize(res.data[0].b64_json), '256x256');
    assert.ok(res.created > 0);
    plainCost = response.headers.get('x-imagegw-cost');
    assert.ok(plainCost, 'no X-Imagegw-Cost');
  },

  async 'images.generate stream'() {
    const cost = plainCost;
    const { data: stream, response } = await client.images
      .generate({ model: 'sandbox-image', prompt: 'a lighthouse at dusk', n: 1, size: '256x256', response_format: 'b64_json', stream: true })
      .withResponse();
    const types = [];
    for await (const ev of stream) {
      types.push(ev.type);
      if (ev.type === 'image_generation.completed') {
        assert.equal(pngSize(ev.b64_json), '256x256');
        assert.equal(ev.size, '256x256');
        assert.equal(ev.output_format, 'png');
        assert.ok(ev.created_at > 0);
        assert.equal(ev.imagegw?.cost, cost, 'the completed event carries the cost');
      }
    }
    assert.deepEqual(types, ['image_generation.completed']);
    assert.match(response.headers.get('content-type'), /^text\/event-stream/);
    assert.equal(response.headers.get('x-imagegw-cost'), cost, 'streamed and plain requests cost the same');
  },

  // n=8 can never fit 5 images a minute: a 429 the SDK does not retry (x-should-retry: false).
  async 'never-fit 429 is not retried'() {
    let requests = 0;
    const limited = new OpenAI({
      baseURL,
      apiKey: env('IMAGEGW_LIMITED_KEY'),
      maxRetries: 2,
      fetch: (url, init) => {
        requests++;
        return fetch(url, init);
      },
    });
    await assert.rejects(
      limited.images.generate({ model: 'sandbox-image', prompt: 'x', n: 8, size: '256x256' }),
      (err) => err instanceof OpenAI.RateLimitError && err.status === 429,
    );
    assert.equal(requests, 1, `the SDK sent ${requests} requests`);
  },
};

let failed = 0;
for (const [name, check] of Object.entries(checks)) {
  try {
    await check();
    console.log(`ok   ${name}`);
  } catch (err) {
    failed++;
    console.log(`FAIL ${name}: ${err?.stack ?? err}`);
  }
}
process.exit(failed ? 1 : 0);
