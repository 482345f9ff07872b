// The official OpenAI Node client (npm "openai", installed by tools/setup)
// against slip-gateway: streamed and whole chat completions, a streamed
// completion, the model list, and the client's own error classes for a 404
// and a 401. Exits non-zero with FAIL: on any mismatch.
//   node openai_client.js BASE_URL MODEL API_KEY
const assert = require("node:assert/strict");
const OpenAI = require("openai");

const [base, model, key] = process.argv.slice(2);
const client = new OpenAI({ baseURL: base + "/v1", apiKey: key, maxRetries: 0, timeout: 20000 });
const messages = [{ role: "user", content: "hello from the openai client" }];

async function main() {
  const stream = await client.chat.completions.create({
    model, messages, max_tokens: 8, stream: true, stream_options: { include_usage: true }, temperature: 0.5,
  });
  let text = "", role = null, finish = null, usage = null;
  for await (const c of stream) {
    if (c.choices.length) {
      const d = c.choices[0].delta;
      if (d.role) role = d.role;
      if (d.content) text += d.content;
      if (c.choices[0].finish_reason) finish = c.choices[0].finish_reason;
    }
    if (c.usage) usage = c.usage;
  }
  assert.equal(role, "assistant");
  assert.equal(finish, "length");
  assert.equal(usage.completion_tokens, 8);
  assert.ok(text.length > 0);

  const whole = await client.chat.completions.create({ model, messages, max_tokens: 8 });
  assert.equal(whole.object, "chat.completion");
  assert.equal(whole.choices[0].message.content, text, "the same prompt gives the same words streamed or whole");

  const cstream = await client.completions.create({ model, prompt: "once upon", max_tokens: 3, stream: true });
  let pieces = 0;
  for await (const c of cstream) if (c.choices[0]?.text) pieces++;
  assert.equal(pieces, 3);

  const models = await client.models.list();
  assert.ok(models.data.some((m) => m.id === model), "the model is listed");

  await assert.rejects(client.chat.completions.create({ model: "no-such-model", messages }), (e) => {
    assert.ok(e instanceof OpenAI.NotFoundError, `want NotFoundError, got ${e.constructor.name}`);
    assert.equal(e.code, "model_not_found");
    return true;
  });
  const wrong = new OpenAI({ baseURL: base + "/v1", apiKey: "sk-wrong", maxRetries: 0 });
  await assert.rejects(wrong.models.list(), (e) => {
    assert.ok(e instanceof OpenAI.AuthenticationError, `want AuthenticationError, got ${e.constructor.name}`);
    return true;
  });
  console.log(`openai-node: stream (${JSON.stringify(text)}), whole, completions stream, models, 404 and 401 errors`);
}

main().catch((e) => {
  console.error("FAIL: openai-node:", e);
  process.exit(1);
});
