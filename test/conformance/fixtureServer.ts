/**
 * Our fixture for the official conformance suite's server scenarios: the tools, resources and
 * prompts the scenarios call by name (`test_simple_text`, `test://static-text`, …), written
 * with the v2 SDK so one handler serves both eras (input-required returns become real
 * server→client requests for 2025-era clients through the SDK's shim).
 *
 * Run: `node --import tsx test/conformance/fixtureServer.ts <port>`; prints its URL.
 */
import {
  acceptedContent,
  type CallToolResult,
  createRequestStateCodec,
  fromJsonSchema,
  inputRequired,
  type InputRequiredResult,
  inputResponse,
  McpServer,
  ResourceTemplate
} from "@modelcontextprotocol/server"
import * as z from "zod"
import { serveBothEras } from "../fixtures/serveBothEras.js"
import { JSON_SCHEMA_2020_12, PNG, WAV } from "./fixtureData.js"

const stateCodec = createRequestStateCodec<{ readonly step: string }>({
  key: crypto.getRandomValues(new Uint8Array(32)),
  ttlSeconds: 600
})

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const text = (value: string): CallToolResult => ({ content: [{ type: "text", text: value }] })
const elicitForm = (message: string, properties: Record<string, unknown>, required: Array<string> = Object.keys(properties)) =>
  inputRequired.elicit({ message, requestedSchema: { type: "object", properties, required } as never })

type Result = Promise<CallToolResult | InputRequiredResult>

const subscribed = new Set<McpServer>()
setInterval(() => {
  for (const server of subscribed) {
    server.server.sendResourceUpdated({ uri: "test://watched-resource" }).catch(() => subscribed.delete(server))
  }
}, 3000).unref()

export const buildFixture = (): McpServer => {
  const server = new McpServer({ name: "mcp-conformance-test-server", version: "1.0.0" }, {
    capabilities: {
      tools: { listChanged: true },
      resources: { subscribe: true, listChanged: true },
      prompts: { listChanged: true },
      logging: {},
      completions: {}
    },
    requestState: { verify: stateCodec.verify }
  })

  server.registerTool("test_simple_text", { description: "Tests simple text content response" }, async () =>
    text("This is a simple text response for testing."))
  server.registerTool("test_image_content", { description: "Tests image content response" }, async () => ({
    content: [{ type: "image", data: PNG, mimeType: "image/png" }]
  }))
  server.registerTool("test_audio_content", { description: "Tests audio content response" }, async () => ({
    content: [{ type: "audio", data: WAV, mimeType: "audio/wav" }]
  }))
  server.registerTool("test_embedded_resource", { description: "Tests embedded resource content response" }, async () => ({
    content: [{
      type: "resource",
      resource: { uri: "test://embedded-resource", mimeType: "text/plain", text: "This is an embedded resource content." }
    }]
  }))
  server.registerTool("test_multiple_content_types", { description: "Tests text, image and resource content together" }, async () => ({
    content: [
      { type: "text", text: "Multiple content types test:" },
      { type: "image", data: PNG, mimeType: "image/png" },
      {
        type: "resource",
        resource: { uri: "test://mixed-content-resource", mimeType: "application/json", text: JSON.stringify({ test: "data", value: 123 }) }
      }
    ]
  }))
  server.registerTool("test_tool_with_logging", { description: "Tests tool that emits log messages during execution" }, async (ctx) => {
    for (const [i, data] of ["Tool execution started", "Tool processing data", "Tool execution completed"].entries()) {
      if (i > 0) await sleep(50)
      await ctx.mcpReq.notify({ method: "notifications/message", params: { level: "info", data } } as never)
    }
    return text("Tool with logging executed successfully")
  })
  server.registerTool("test_tool_with_progress", { description: "Tests tool that reports progress notifications" }, async (ctx) => {
    const progressToken = ctx.mcpReq._meta?.progressToken ?? 0
    for (const progress of [0, 50, 100]) {
      if (progress > 0) await sleep(50)
      await ctx.mcpReq.notify({
        method: "notifications/progress",
        params: { progressToken, progress, total: 100, message: `Completed step ${progress} of 100` }
      } as never)
    }
    return text(String(progressToken))
  })
  server.registerTool("test_error_handling", { description: "Tests error response handling" }, async () => {
    throw new Error("This tool intentionally returns an error for testing")
  })
  server.registerTool("test_reconnection", { description: "Closes the SSE stream mid-call (SEP-1699)" }, async (ctx) => {
    ctx.http?.closeSSE?.()
    await sleep(100)
    return text("Reconnection test completed successfully. If you received this, the client properly reconnected after stream closure.")
  })
  server.registerTool("test_sampling", {
    description: "Tests server-initiated sampling (LLM completion request)",
    inputSchema: z.object({ prompt: z.string().describe("The prompt to send to the LLM") })
  }, async ({ prompt }, ctx): Result => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, "sample")
    if (answer.kind !== "sampling") {
      return inputRequired({
        inputRequests: {
          sample: inputRequired.createMessage({ messages: [{ role: "user", content: { type: "text", text: prompt } }], maxTokens: 100 })
        }
      })
    }
    const content = answer.result.content as { type: string; text?: string }
    return text(`LLM response: ${content.type === "text" ? content.text : "No response"}`)
  })
  server.registerTool("test_elicitation", {
    description: "Tests server-initiated elicitation (user input request)",
    inputSchema: z.object({ message: z.string().describe("The message to show the user") })
  }, async ({ message }, ctx): Result => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, "input")
    if (answer.kind !== "elicit") {
      return inputRequired({
        inputRequests: {
          input: elicitForm(message, {
            username: { type: "string", description: "User's response" },
            email: { type: "string", description: "User's email address" }
          })
        }
      })
    }
    return text(`User response: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`)
  })
  server.registerTool("test_elicitation_sep1034_defaults", { description: "Elicitation with defaults (SEP-1034)" }, async (ctx): Result => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, "form")
    if (answer.kind !== "elicit") {
      return inputRequired({
        inputRequests: {
          form: elicitForm("Please review and update the form fields with defaults", {
            name: { type: "string", description: "User name", default: "John Doe" },
            age: { type: "integer", description: "User age", default: 30 },
            score: { type: "number", description: "User score", default: 95.5 },
            status: { type: "string", description: "User status", enum: ["active", "inactive", "pending"], default: "active" },
            verified: { type: "boolean", description: "Verification status", default: true }
          }, [])
        }
      })
    }
    return text(`Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`)
  })
  server.registerTool("test_elicitation_sep1330_enums", { description: "Elicitation with enum variants (SEP-1330)" }, async (ctx): Result => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, "form")
    if (answer.kind !== "elicit") {
      return inputRequired({
        inputRequests: {
          form: elicitForm("Please select options from the enum fields", {
            untitledSingle: { type: "string", description: "Untitled single-select", enum: ["option1", "option2", "option3"] },
            titledSingle: {
              type: "string",
              description: "Titled single-select",
              oneOf: [{ const: "value1", title: "First Option" }, { const: "value2", title: "Second Option" }, {
                const: "value3",
                title: "Third Option"
              }]
            },
            legacyEnum: {
              type: "string",
              description: "Legacy titled enum",
              enum: ["opt1", "opt2", "opt3"],
              enumNames: ["Option One", "Option Two", "Option Three"]
            },
            untitledMulti: {
              type: "array",
              description: "Untitled multi-select",
              items: { type: "string", enum: ["option1", "option2", "option3"] }
            },
            titledMulti: {
              type: "array",
              description: "Titled multi-select",
              items: {
                anyOf: [{ const: "value1", title: "First Choice" }, { const: "value2", title: "Second Choice" }, {
                  const: "value3",
                  title: "Third Choice"
                }]
              }
            }
          }, [])
        }
      })
    }
    return text(`Elicitation completed: action=${answer.action}, content=${JSON.stringify(answer.content ?? {})}`)
  })
  server.registerTool("json_schema_2020_12_tool", {
    description: "Tool with JSON Schema 2020-12 features",
    inputSchema: fromJsonSchema(JSON_SCHEMA_2020_12 as never)
  }, async () => text("ok"))

  // Multi-round results (SEP-2322).
  const nameSchema = z.object({ name: z.string() })
  server.registerTool("test_input_required_result_elicitation", { description: "input_required: elicitation" }, async (ctx): Result => {
    const name = acceptedContent(ctx.mcpReq.inputResponses, "user_name", nameSchema)
    if (name === undefined) {
      return inputRequired({ inputRequests: { user_name: elicitForm("What is your name?", { name: { type: "string" } }) } })
    }
    return text(`Hello, ${name.name}!`)
  })
  server.registerTool("test_input_required_result_sampling", { description: "input_required: sampling" }, async (ctx): Result => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, "capital_question")
    if (answer.kind !== "sampling") {
      return inputRequired({
        inputRequests: {
          capital_question: inputRequired.createMessage({
            messages: [{ role: "user", content: { type: "text", text: "What is the capital of France?" } }],
            maxTokens: 100
          })
        }
      })
    }
    const content = answer.result.content as { type: string; text?: string }
    return text(`Sampling said: ${content.type === "text" ? content.text : "?"}`)
  })
  server.registerTool("test_input_required_result_list_roots", { description: "input_required: roots" }, async (ctx): Result => {
    const answer = inputResponse(ctx.mcpReq.inputResponses, "client_roots")
    if (answer.kind !== "roots") return inputRequired({ inputRequests: { client_roots: inputRequired.listRoots() } })
    return text(`Roots: ${answer.roots.map((r) => r.uri).join(", ")}`)
  })
  server.registerTool("test_input_required_result_request_state", { description: "input_required: requestState" }, async (ctx): Result => {
    const state = ctx.mcpReq.requestState<{ step: string }>()
    const ok = inputResponse(ctx.mcpReq.inputResponses, "confirm")
    if (state?.step !== "asked" || ok.kind !== "elicit") {
      return inputRequired({
        inputRequests: { confirm: elicitForm("Please confirm", { ok: { type: "boolean" } }) },
        requestState: await stateCodec.mint({ step: "asked" })
      })
    }
    return text("state-ok: confirmed")
  })
  server.registerTool("test_input_required_result_multiple_inputs", { description: "input_required: several kinds" }, async (ctx): Result => {
    const responses = ctx.mcpReq.inputResponses
    const complete = ["user_name", "greeting", "client_roots"].every((k) => inputResponse(responses, k).kind !== "missing")
    if (!complete || ctx.mcpReq.requestState<{ step: string }>()?.step !== "multi") {
      return inputRequired({
        inputRequests: {
          user_name: elicitForm("What is your name?", { name: { type: "string" } }),
          greeting: inputRequired.createMessage({
            messages: [{ role: "user", content: { type: "text", text: "Generate a greeting" } }],
            maxTokens: 50
          }),
          client_roots: inputRequired.listRoots()
        },
        requestState: await stateCodec.mint({ step: "multi" })
      })
    }
    return text("All inputs received")
  })
  server.registerTool("test_input_required_result_multi_round", { description: "input_required: two rounds" }, async (ctx): Result => {
    const step = ctx.mcpReq.requestState<{ step: string }>()?.step
    if (step === "round2" && acceptedContent(ctx.mcpReq.inputResponses, "step2", z.object({ color: z.string() })) !== undefined) {
      return text("Multi-round complete")
    }
    if (step === "round1" && acceptedContent(ctx.mcpReq.inputResponses, "step1", nameSchema) !== undefined || step === "round2") {
      return inputRequired({
        inputRequests: { step2: elicitForm("Step 2: What is your favorite color?", { color: { type: "string" } }) },
        requestState: await stateCodec.mint({ step: "round2" })
      })
    }
    return inputRequired({
      inputRequests: { step1: elicitForm("Step 1: What is your name?", { name: { type: "string" } }) },
      requestState: await stateCodec.mint({ step: "round1" })
    })
  })
  server.registerTool("test_input_required_result_tampered_state", { description: "input_required: signed state" }, async (ctx): Result => {
    if (ctx.mcpReq.requestState<{ step: string }>()?.step === "signed") return text("state verified")
    return inputRequired({
      inputRequests: { confirm: elicitForm("Please confirm", { ok: { type: "boolean" } }) },
      requestState: await stateCodec.mint({ step: "signed" })
    })
  })

  // Resources.
  server.registerResource("static-text", "test://static-text", {
    title: "Static Text Resource",
    description: "A static text resource for testing",
    mimeType: "text/plain"
  }, async () => ({ contents: [{ uri: "test://static-text", mimeType: "text/plain", text: "This is the content of the static text resource." }] }))
  server.registerResource("static-binary", "test://static-binary", {
    title: "Static Binary Resource",
    description: "A static binary resource (image) for testing",
    mimeType: "image/png"
  }, async () => ({ contents: [{ uri: "test://static-binary", mimeType: "image/png", blob: PNG }] }))
  server.registerResource("watched", "test://watched-resource", {
    title: "Watched Resource",
    description: "A resource that can be subscribed to",
    mimeType: "text/plain"
  }, async () => ({ contents: [{ uri: "test://watched-resource", mimeType: "text/plain", text: "Watched resource content" }] }))
  server.registerResource(
    "template",
    new ResourceTemplate("test://template/{id}/data", {
      list: undefined,
      complete: { id: (value) => ["1", "2", "3", "123"].filter((v) => v.startsWith(value)) }
    }),
    { title: "Resource Template", description: "A resource template with parameter substitution", mimeType: "application/json" },
    async (uri, { id }) => ({
      contents: [{
        uri: uri.href,
        mimeType: "application/json",
        text: JSON.stringify({ id: String(id), templateTest: true, data: `Data for ID: ${String(id)}` })
      }]
    })
  )
  server.server.setRequestHandler("resources/subscribe", async () => {
    subscribed.add(server)
    return {}
  })
  server.server.setRequestHandler("resources/unsubscribe", async () => {
    subscribed.delete(server)
    return {}
  })

  // Prompts.
  server.registerPrompt("test_simple_prompt", { description: "A simple prompt without arguments" }, () => ({
    messages: [{ role: "user", content: { type: "text", text: "This is a simple prompt for testing." } }]
  }))
  server.registerPrompt("test_prompt_with_arguments", {
    description: "A prompt with required arguments",
    argsSchema: z.object({ arg1: z.string().describe("First test argument"), arg2: z.string().describe("Second test argument") })
  }, ({ arg1, arg2 }) => ({
    messages: [{ role: "user", content: { type: "text", text: `Prompt with arguments: arg1='${arg1}', arg2='${arg2}'` } }]
  }))
  server.registerPrompt("test_prompt_with_embedded_resource", {
    description: "A prompt that includes an embedded resource",
    argsSchema: z.object({ resourceUri: z.string().describe("URI of the resource to embed") })
  }, ({ resourceUri }) => ({
    messages: [
      { role: "user", content: { type: "resource", resource: { uri: resourceUri, mimeType: "text/plain", text: "Embedded resource content for testing." } } },
      { role: "user", content: { type: "text", text: "Please process the embedded resource above." } }
    ]
  }))
  server.registerPrompt("test_prompt_with_image", { description: "A prompt that includes image content" }, () => ({
    messages: [
      { role: "user", content: { type: "image", data: PNG, mimeType: "image/png" } },
      { role: "user", content: { type: "text", text: "Please analyze the image above." } }
    ]
  }))
  server.registerPrompt("test_input_required_result_prompt", { description: "A prompt that asks for context first" }, async (ctx) => {
    const context = acceptedContent(ctx.mcpReq.inputResponses, "user_context", z.object({ context: z.string() }))
    if (context === undefined) {
      return inputRequired({
        inputRequests: { user_context: elicitForm("What context should the prompt use?", { context: { type: "string" } }) }
      }) as never
    }
    return { messages: [{ role: "user", content: { type: "text", text: `Context: ${context.context}` } }] }
  })
  return server
}

if (import.meta.url === `file://${process.argv[1]}`) {
  const served = await serveBothEras(buildFixture, Number(process.argv[2] ?? 0))
  process.stdout.write(`${served.url}\n`)
}
