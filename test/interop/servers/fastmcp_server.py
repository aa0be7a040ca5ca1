"""
A FastMCP server (the Python ecosystem's usual way to write one) for the interop suite: tools with
structured output, a tool error, progress, logging, sampling, elicitation, roots, a slow tool that
counts its cancellations, a resource, a template, a prompt and completions.

    python fastmcp_server.py http|sse

It binds 127.0.0.1 on a free port and prints `LISTENING <port>`. With APERTURE_TEST_TOKEN set it
requires `Authorization: Bearer <that token>` (FastMCP's StaticTokenVerifier). `GET /debug/seen`
(outside MCP, no auth) answers what the server has seen: every Authorization header value on its
MCP endpoint and the counts of the slow tool, so a test can check what the gateway sent it.

FastMCP serves both protocol eras; server→client questions (sampling, elicitation, roots) are
asked by a real request on a 2025-era session and by an `input_required` result on 2026-07-28,
so the tools here do whichever the connection speaks.
"""

from __future__ import annotations

import asyncio
import json
import os
import socket
import sys
from typing import Annotated

import mcp_types
from fastmcp import Context, FastMCP
from fastmcp.exceptions import ToolError
from fastmcp.server.dependencies import get_http_request
from mcp_types.version import MODERN_PROTOCOL_VERSIONS
from pydantic import BaseModel, Field
from starlette.requests import Request
from starlette.responses import JSONResponse

transport = sys.argv[1] if len(sys.argv) > 1 else "http"
token = os.environ.get("APERTURE_TEST_TOKEN")

auth = None
if token:
    from fastmcp.server.auth.providers.jwt import StaticTokenVerifier

    auth = StaticTokenVerifier(tokens={token: {"client_id": "aperture", "scopes": []}})

mcp = FastMCP("fastmcp-interop", auth=auth)

seen_authorizations: list[str] = []
slow_calls = {"started": 0, "completed": 0, "cancelled": 0}


class Weather(BaseModel):
    city: str
    temperature: float = Field(description="Temperature in celsius")
    conditions: str


def is_modern(ctx: Context) -> bool:
    rc = ctx.request_context
    return rc is not None and rc.protocol_version in MODERN_PROTOCOL_VERSIONS


@mcp.tool
def add(a: int, b: int) -> int:
    """Adds two integers."""
    return a + b


@mcp.tool
def weather(city: str) -> Weather:
    """The weather in a city, as structured content."""
    return Weather(city=city, temperature=21.5, conditions="sunny")


@mcp.tool
def fail(message: str) -> str:
    """Always fails with a tool error carrying `message`."""
    raise ToolError(f"failed as asked: {message}")


@mcp.tool
async def count(steps: int, ctx: Context) -> str:
    """Reports progress 1..steps, then answers."""
    for i in range(1, steps + 1):
        await ctx.report_progress(i, steps, f"step {i}")
    return f"counted {steps}"


@mcp.tool
async def chatty(ctx: Context) -> str:
    """Sends log messages at several levels during the call."""
    await ctx.debug("chatty debug")
    await ctx.info("chatty info")
    await ctx.warning("chatty warning")
    await ctx.error("chatty error")
    return "chatted"


@mcp.tool
async def slow(seconds: float, ctx: Context) -> str:
    """Sleeps; counts how often it was started, completed and cancelled (GET /debug/seen)."""
    slow_calls["started"] += 1
    try:
        await asyncio.sleep(seconds)
    except asyncio.CancelledError:
        slow_calls["cancelled"] += 1
        raise
    slow_calls["completed"] += 1
    return "slept"


@mcp.tool
async def remember(value: str, ctx: Context) -> str:
    """Keeps `value` in this MCP session's state (FastMCP's session-scoped state store)."""
    await ctx.set_state("remembered", value)
    return "remembered"


@mcp.tool
async def recall(ctx: Context) -> str:
    """What this session was asked to remember, or <nothing>."""
    value = await ctx.get_state("remembered")
    return "<nothing>" if value is None else str(value)


@mcp.tool
def session_seen(ctx: Context) -> str:
    """The protocol version and session id this call arrived in."""
    rc = ctx.request_context
    return json.dumps({"protocol": rc.protocol_version if rc else None, "session": ctx.session_id})


@mcp.tool
def authorization_seen() -> str:
    """The Authorization header this call reached the server with."""
    return get_http_request().headers.get("authorization", "<none>")


@mcp.tool
async def ask_llm(prompt: str, ctx: Context) -> str | mcp_types.InputRequiredResult:
    """Asks the client's model (sampling) and answers with its reply."""
    if is_modern(ctx):
        answers = ctx.input_responses
        if not answers:
            return mcp_types.InputRequiredResult(
                input_requests={
                    "llm": mcp_types.CreateMessageRequest(
                        params=mcp_types.CreateMessageRequestParams(
                            messages=[mcp_types.SamplingMessage(role="user", content=mcp_types.TextContent(type="text", text=prompt))],
                            max_tokens=50,
                        )
                    )
                }
            )
        reply = answers["llm"]
    else:
        reply = await ctx.session.create_message(
            messages=[mcp_types.SamplingMessage(role="user", content=mcp_types.TextContent(type="text", text=prompt))],
            max_tokens=50,
            related_request_id=ctx.request_id,
        )
    content = reply.content
    text = content.text if isinstance(content, mcp_types.TextContent) else json.dumps(reply.model_dump(mode="json"))
    return f"model said: {text}"


@mcp.tool
async def ask_user(ctx: Context) -> str | mcp_types.InputRequiredResult:
    """Asks the user for a name (elicitation) and greets it."""
    schema = {"type": "object", "properties": {"name": {"type": "string"}}, "required": ["name"]}
    if is_modern(ctx):
        answers = ctx.input_responses
        if not answers:
            return mcp_types.InputRequiredResult(
                input_requests={
                    "who": mcp_types.ElicitRequest(
                        params=mcp_types.ElicitRequestFormParams(message="Who are you?", requested_schema=schema)
                    )
                }
            )
        result = answers["who"]
    else:
        result = await ctx.session.elicit(message="Who are you?", requested_schema=schema, related_request_id=ctx.request_id)
    if result.action != "accept" or result.content is None:
        return f"user chose {result.action}"
    return f"hello {result.content['name']}"


@mcp.tool
async def my_roots(ctx: Context) -> str | mcp_types.InputRequiredResult:
    """The client's roots, as a JSON list of URIs (asked on every call: nothing cached)."""
    if is_modern(ctx):
        answers = ctx.input_responses
        if not answers:
            return mcp_types.InputRequiredResult(input_requests={"roots": mcp_types.ListRootsRequest()})
        result = answers["roots"]
    else:
        result = await ctx.session.list_roots()
    return json.dumps([str(root.uri) for root in result.roots])


@mcp.resource("fixture://readme", mime_type="text/plain")
def readme() -> str:
    """A fixed text resource."""
    return "the fastmcp readme"


@mcp.resource("fixture://items/{item_id}", mime_type="application/json")
def item(item_id: str) -> str:
    """One item, by id."""
    return json.dumps({"id": item_id, "name": f"item {item_id}"})


@mcp.prompt
def greet(name: Annotated[str, Field(description="Who to greet")], style: str = "plain") -> str:
    """A greeting prompt."""
    return f"Greet {name} in a {style} way."


@mcp.completion
def complete(ref, argument, context):
    if isinstance(ref, mcp_types.PromptReference) and ref.name == "greet" and argument.name == "name":
        return [n for n in ["alice", "albert", "bob"] if n.startswith(argument.value)]
    if isinstance(ref, mcp_types.ResourceTemplateReference) and argument.name == "item_id":
        return [i for i in ["1", "12", "2"] if i.startswith(argument.value)]
    return None


@mcp.custom_route("/debug/seen", methods=["GET"])
async def debug_seen(request: Request) -> JSONResponse:
    return JSONResponse({"authorizations": seen_authorizations, "slow": slow_calls})


class RecordAuthorization:
    """ASGI middleware: remembers every Authorization value sent to the MCP endpoint."""

    def __init__(self, app):
        self.app = app

    async def __call__(self, scope, receive, send):
        if scope["type"] == "http" and not scope["path"].startswith("/debug"):
            for name, value in scope["headers"]:
                if name == b"authorization":
                    text = value.decode("latin-1")
                    if text not in seen_authorizations:
                        seen_authorizations.append(text)
        await self.app(scope, receive, send)


if __name__ == "__main__":
    from starlette.middleware import Middleware

    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind(("127.0.0.1", 0))
    sock.listen(128)
    port = sock.getsockname()[1]
    print(f"LISTENING {port}", flush=True)
    asyncio.run(
        mcp.run_http_async(
            show_banner=False,
            transport=transport,
            host="127.0.0.1",
            port=port,
            log_level="warning",
            middleware=[Middleware(RecordAuthorization)],
            sockets=[sock],
        )
    )
