// The Vercel AI SDK's default OpenAI provider against the gateway: `openai(model)` speaks the Responses API.
// Usage: node vercel_ai.mjs <generate|stream|conversation> <model>   (MODELYARD_URL, MODELYARD_KEY from the
// environment). Prints one JSON object: the final text, the tool calls and results of every step, the finish
// reason, usage; for a conversation, both turns' texts (the second turn refers to the first answer by id, as
// the SDK does by default).
import { createOpenAI } from "@ai-sdk/openai";
import { generateText, stepCountIs, streamText, tool } from "ai";
import { z } from "zod";

const [mode, model] = process.argv.slice(2);
const provider = createOpenAI({ baseURL: process.env.MODELYARD_URL, apiKey: process.env.MODELYARD_KEY });

const tools = {
  get_weather: tool({
    description: "The weather in a city",
    inputSchema: z.object({ city: z.string() }),
    execute: async ({ city }) => ({ city, forecast: "sunny", celsius: 21 }),
  }),
};
const request = {
  model: provider(model),
  prompt: `What is the weather in Oslo? [simulate tool-call='{"name":"get_weather","arguments":{"city":"Oslo"}}']`,
  tools,
  stopWhen: stepCountIs(3),
};

function summary(steps, text, finishReason, usage) {
  return {
    text,
    finishReason,
    usage: { input: usage.inputTokens, output: usage.outputTokens },
    steps: steps.map((step) => ({
      toolCalls: step.toolCalls.map((call) => ({ name: call.toolName, input: call.input })),
      toolResults: step.toolResults.map((result) => result.output),
      finishReason: step.finishReason,
    })),
  };
}

async function conversation() {
  const opening = { role: "user", content: "Remember the word kiwi." };
  const first = await generateText({ model: provider(model), messages: [opening] });
  const second = await generateText({
    model: provider(model),
    messages: [opening, ...first.response.messages, { role: "user", content: "Which word was it?" }],
  });
  return { first: first.text, second: second.text, finishReason: second.finishReason };
}

try {
  let result;
  if (mode === "conversation") {
    result = await conversation();
  } else if (mode === "stream") {
    const stream = streamText({ ...request, onError: ({ error }) => { throw error; } });
    let streamed = "";
    for await (const delta of stream.textStream) streamed += delta;
    const steps = await stream.steps;
    result = { ...summary(steps, await stream.text, await stream.finishReason, await stream.totalUsage), streamed };
  } else {
    const answer = await generateText(request);
    result = summary(answer.steps, answer.text, answer.finishReason, answer.totalUsage);
  }
  process.stdout.write(JSON.stringify(result));
} catch (error) {
  process.stdout.write(JSON.stringify({ error: String(error?.message ?? error), status: error?.statusCode ?? null }));
  process.exitCode = 1;
}
