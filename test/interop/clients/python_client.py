"""
The Python `mcp` SDK's client against the gateway: one run tries every feature of the interop
matrix in turn and prints one JSON object, feature -> what the client saw (or {"error": ...}),
for clients-python.test.ts to assert on. Each feature has its own deadline, so one that hangs
fails alone.

Usage: python python_client.py <url> <legacy|auto> <alice key> <bob key>
"""

import json
import sys
from typing import Any

import anyio
import httpx2
import mcp_types as types
from mcp.client.client import Client
from mcp.client.streamable_http import streamable_http_client
from mcp.shared._httpx_utils import create_mcp_http_client
from mcp.shared.exceptions import MCPError

URL, MODE, ALICE, BOB = sys.argv[1:5]
DEADLINE = 20


def http_client(key: str, seen: list[tuple[str, int, str | None]] | None = None) -> httpx2.AsyncClient:
    """The caller's API key on every request; `seen` records (method, status, session id) of each."""
    client = create_mcp_http_client(headers={"authorization": f"Bearer {key}"})
    if seen is not None:

        async def record(response: httpx2.Response) -> None:
            seen.append((response.request.method, response.status_code, response.request.headers.get("mcp-session-id")))

        client.event_hooks["response"].append(record)
    return client


def connect(key: str = ALICE, seen: list[tuple[str, int, str | None]] | None = None, **callbacks: Any) -> Client:
    transport = streamable_http_client(URL, http_client=http_client(key, seen))
    return Client(transport, mode=MODE, client_info=types.Implementation(name=f"python-{MODE}", version="1"), **callbacks)


def text_of(result: types.CallToolResult | types.GetPromptResult) -> str:
    if isinstance(result, types.GetPromptResult):
        return " ".join(m.content.text for m in result.messages if isinstance(m.content, types.TextContent))
    return " ".join(c.text for c in result.content if isinstance(c, types.TextContent))


async def list_call(client: Client) -> dict[str, Any]:
    tools = await client.list_tools()
    echoed = await client.call_tool("everything_echo", {"message": "from python"})
    return {"protocol": client.protocol_version, "tools": [t.name for t in tools.tools], "echo": text_of(echoed)}


async def structured(client: Client) -> dict[str, Any]:
    result = await client.call_tool("everything_get-structured-content", {"location": "Chicago"})
    return {"structuredContent": result.structured_content, "isError": result.is_error}


async def errors(client: Client) -> dict[str, Any]:
    # A tool's own failure (its arguments do not validate upstream) is a result with isError...
    tool_error = await client.call_tool("everything_get-sum", {"a": "not a number", "b": 1})
    # ...a tool that does not exist is a JSON-RPC error.
    try:
        await client.call_tool("everything_no-such-tool", {})
        rpc_error: dict[str, Any] = {"raised": False}
    except MCPError as e:
        rpc_error = {"raised": True, "code": e.code, "message": e.error.message}
    return {"toolError": {"isError": tool_error.is_error, "text": text_of(tool_error)}, "rpcError": rpc_error}


async def resources(client: Client) -> dict[str, Any]:
    listed = await client.list_resources()
    uris = [str(r.uri) for r in listed.resources]
    uri = "everything-demo://resource/static/document/architecture.md"
    read = await client.read_resource(uri)
    return {"uris": uris, "read": [{"uri": str(c.uri), "hasText": bool(getattr(c, "text", ""))} for c in read.contents]}


async def templates(client: Client) -> dict[str, Any]:
    listed = await client.list_resource_templates()
    read = await client.read_resource("everything-demo://resource/dynamic/text/7")
    return {
        "templates": [t.uri_template for t in listed.resource_templates],
        "read": [{"uri": str(c.uri), "text": getattr(c, "text", None)} for c in read.contents],
    }


async def prompts(client: Client) -> dict[str, Any]:
    listed = await client.list_prompts()
    got = await client.get_prompt("everything_args-prompt", {"city": "Lisbon"})
    return {"prompts": [p.name for p in listed.prompts], "text": text_of(got)}


async def completion(client: Client) -> dict[str, Any]:
    result = await client.complete(types.PromptReference(name="everything_completable-prompt"), {"name": "department", "value": "E"})
    return {"values": result.completion.values}


async def progress_of(client: Client, name: str, arguments: dict[str, Any]) -> dict[str, Any]:
    seen: list[float] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append(progress)

    result = await client.call_tool(name, arguments, progress_callback=on_progress)
    return {"notifications": seen, "text": text_of(result)}


async def progress(client: Client) -> dict[str, Any]:
    """Over a streamable-HTTP upstream (the v2 fixture's `slow`)."""
    return await progress_of(client, "fx_slow", {"steps": 4, "ms": 50})


async def progress_stdio(client: Client) -> list[dict[str, Any]]:
    """Over stdio (server-everything), three calls: the known loss of the last notification shows in most."""
    return [await progress_of(client, "everything_trigger-long-running-operation", {"duration": 0.4, "steps": 4}) for _ in range(3)]


async def sampling(_: Client) -> dict[str, Any]:
    async def answer(context: Any, params: types.CreateMessageRequestParams) -> types.CreateMessageResult:
        return types.CreateMessageResult(role="assistant", content=types.TextContent(type="text", text="python-sampled"), model="test-model")

    async with connect(sampling_callback=answer) as client:
        result = await client.call_tool("everything_trigger-sampling-request", {"prompt": "hi"})
        return {"text": text_of(result), "isError": result.is_error}


async def elicitation(_: Client) -> dict[str, Any]:
    async def answer(context: Any, params: types.ElicitRequestParams) -> types.ElicitResult:
        return types.ElicitResult(action="accept", content={"name": "Python Elicited", "check": True})

    async with connect(elicitation_callback=answer) as client:
        result = await client.call_tool("everything_trigger-elicitation-request", {})
        return {"text": text_of(result), "isError": result.is_error}


async def roots(_: Client) -> dict[str, Any]:
    """Alice, then Bob, each with their own roots: each must be shown only their own."""
    seen: dict[str, str] = {}
    for who, key in (("alice", ALICE), ("bob", BOB)):

        async def list_roots(context: Any, who: str = who) -> types.ListRootsResult:
            return types.ListRootsResult(roots=[types.Root(uri=f"file:///home/{who}/project", name=f"{who}-root")])

        async with connect(key, list_roots_callback=list_roots) as client:
            result = await client.call_tool("everything_get-roots-list", {})
            seen[who] = text_of(result)
    return seen


async def logging(_: Client) -> dict[str, Any]:
    messages: list[dict[str, Any]] = []

    async def on_log(params: types.LoggingMessageNotificationParams) -> None:
        messages.append({"level": params.level, "data": params.data})

    # 2026-07-28 opts in per request (log_level); the handshake era asks with logging/setLevel.
    async with connect(logging_callback=on_log, log_level="debug") as client:
        if MODE == "legacy":
            await client.set_logging_level("debug")
        # server-everything sends one message at once when simulated logging starts.
        started = await client.call_tool("everything_toggle-simulated-logging", {})
        with anyio.move_on_after(3):
            while not messages:
                await anyio.sleep(0.05)
        stopped = await client.call_tool("everything_toggle-simulated-logging", {})
        return {"messages": messages, "started": text_of(started), "stopped": text_of(stopped)}


async def cancellation(client: Client) -> dict[str, Any]:
    """Abandons a call of fx_slow once its first progress arrives (the SDK then sends notifications/cancelled)."""
    first = anyio.Event()

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        first.set()

    finished: dict[str, Any] = {"completed": False}
    started = anyio.current_time()
    async with anyio.create_task_group() as tg:

        async def call() -> None:
            await client.call_tool("fx_slow", {"steps": 50, "ms": 100}, progress_callback=on_progress)
            finished["completed"] = True

        tg.start_soon(call)
        await first.wait()
        tg.cancel_scope.cancel()
    after = await client.call_tool("everything_echo", {"message": "after cancel"})
    return {**finished, "seconds": anyio.current_time() - started, "after": text_of(after)}


async def delete(_: Client) -> dict[str, Any]:
    seen: list[tuple[str, int, str | None]] = []
    async with connect(seen=seen) as client:
        await client.list_tools()
    session = next((s for (_, _, s) in seen if s is not None), None)
    deletes = [status for (method, status, _) in seen if method == "DELETE"]
    reuse = None
    if session is not None:
        async with http_client(ALICE) as http:
            response = await http.post(
                URL,
                headers={"mcp-session-id": session, "mcp-protocol-version": "2025-11-25", "accept": "application/json, text/event-stream"},
                json={"jsonrpc": "2.0", "id": 1, "method": "tools/list"},
            )
            reuse = response.status_code
    return {"session": session, "deletes": deletes, "reuseStatus": reuse}


FEATURES = {
    "list/call": list_call,
    "structured content": structured,
    "isError vs JSON-RPC error": errors,
    "resources": resources,
    "templates": templates,
    "prompts": prompts,
    "completion": completion,
    "progress": progress,
    "progress (stdio)": progress_stdio,
    "sampling": sampling,
    "elicitation": elicitation,
    "roots (two callers)": roots,
    "logging": logging,
    "cancellation": cancellation,
    "DELETE": delete,
}


async def main() -> None:
    only = set(sys.argv[5:])
    results: dict[str, Any] = {}
    async with connect() as client:
        for feature, run in FEATURES.items():
            if only and feature not in only:
                continue
            try:
                with anyio.fail_after(DEADLINE):
                    results[feature] = await run(client)
            except BaseException as e:  # noqa: BLE001 - the test shows what went wrong, per feature
                if isinstance(e, KeyboardInterrupt):
                    raise
                results[feature] = {"error": f"{type(e).__name__}: {e}"}
    print(json.dumps(results, default=str))


anyio.run(main)
