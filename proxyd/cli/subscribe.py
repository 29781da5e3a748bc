"""Following a GraphQL subscription from the CLI (`proxyd logs -f`, `proxyd service logs -f`):
graphql-transport-ws over the API's /graphql WebSocket, one operation, each result handed to a
callback until the server completes it; every failure becomes a CliError with one sentence."""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

from proxyd.cli.client import describe_errors
from proxyd.cli.errors import CliError


async def follow_subscription(
    api_url: str,
    token: str,
    query: str,
    variables: dict[str, Any],
    on_data: Callable[[dict[str, Any]], None],
    what: str = "the live stream",
) -> None:
    """Run one subscription; on_data gets each result's `data`."""
    from trio_websocket import ConnectionClosed, HandshakeError, open_websocket_url

    ws_url = "ws" + api_url[4:] + "/graphql"
    init = {"Authorization": f"Bearer {token}"}
    try:
        async with open_websocket_url(ws_url, subprotocols=["graphql-transport-ws"]) as ws:
            await ws.send_message(json.dumps({"type": "connection_init", "payload": init}))
            ack = json.loads(await ws.get_message())
            if ack.get("type") != "connection_ack":
                raise CliError(f"the API refused the subscription: {ack}.")
            payload = {"query": query, "variables": variables}
            await ws.send_message(json.dumps({"id": "1", "type": "subscribe", "payload": payload}))
            while True:
                message = json.loads(await ws.get_message())
                kind = message.get("type")
                if kind == "ping":
                    await ws.send_message(json.dumps({"type": "pong"}))
                elif kind == "next":
                    result = message["payload"]
                    if result.get("errors"):
                        raise CliError(describe_errors(result["errors"]))
                    on_data(result["data"])
                elif kind == "error":
                    raise CliError(describe_errors(message.get("payload") or []))
                elif kind == "complete":
                    return
    except HandshakeError as exc:
        raise CliError(f"cannot open {what} at {ws_url}: {exc}.") from None
    except ConnectionClosed as exc:
        reason = exc.reason
        if reason is not None and reason.code == 4403:
            raise CliError(
                "the API refused the token (Forbidden). Get a new one with "
                "`proxyd token issue --scope admin`."
            ) from None
        raise CliError(f"{what} closed ({reason}).") from None
    except OSError:
        raise CliError(
            f"cannot reach the proxyd API at {api_url}: is `proxyd serve` running?"
        ) from None
