"""A Bot API server of our own on loopback: the methods the bot calls, every call recorded with its time.

The bot is pointed at it with python-telegram-bot's base_url/base_file_url. Tests
push updates (messages, documents, button presses) that the next getUpdates long
poll returns, and wait for the calls the bot makes in answer. It can refuse a
method with 429 + retry_after (flood control) and can lack sendMessageDraft
(an older server).
"""

from __future__ import annotations

import asyncio
import itertools
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

TOKEN = "123456789:AAE-fake-token-for-tests-only-0123456789"
_INTS = ("chat_id", "message_id", "draft_id", "offset", "timeout", "limit", "reply_to_message_id")
_JSON = ("reply_markup", "commands", "allowed_updates", "entities", "reply_parameters")


@dataclass
class Call:
    method: str
    params: dict[str, Any]
    at: float  # time.monotonic() when it arrived
    refused: bool = False  # answered 429 (or 404 for a missing method)

    @property
    def chat_id(self) -> int | None:
        return self.params.get("chat_id")

    @property
    def text(self) -> str:
        return self.params.get("text") or ""


@dataclass
class FakeTelegram:
    token: str = TOKEN
    drafts: bool = True  # whether sendMessageDraft exists here
    bot_user: dict = field(
        default_factory=lambda: {"id": 999000, "is_bot": True, "first_name": "Twin", "username": "twin_test_bot"}
    )

    def __post_init__(self) -> None:
        self.calls: list[Call] = []
        self.updates: list[dict] = []
        self.files: dict[str, tuple[str, bytes]] = {}  # file_id -> (file_path, content)
        self.refusals: dict[str, list[int]] = {}  # method -> retry_after of the next refused calls
        self.chats: dict[int, dict] = {}
        self.changed = asyncio.Condition()
        self._update_ids = itertools.count(1)
        self._message_ids = itertools.count(100)
        self._runner: web.AppRunner | None = None
        self.port = 0

    # server
    async def start(self) -> FakeTelegram:
        app = web.Application(client_max_size=64 * 2**20)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_get("/file/bot{token}/{path:.+}", self._download)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = site._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    @property
    def api_url(self) -> str:
        return f"http://127.0.0.1:{self.port}/bot"

    # driving the bot
    @staticmethod
    def user(user_id: int, first_name: str, username: str = "") -> dict:
        out = {"id": user_id, "is_bot": False, "first_name": first_name}
        if username:
            out["username"] = username
        return out

    def send(
        self,
        user: dict,
        text: str = "",
        *,
        chat: dict | None = None,
        document: dict | None = None,
        reply_to: dict | None = None,
        forward_from: dict | None = None,
    ) -> dict:
        """A message from `user` (in their private chat unless `chat` is a group); returns it."""
        chat = chat or {"id": user["id"], "type": "private", "first_name": user["first_name"]}
        self.chats[chat["id"]] = chat
        message: dict[str, Any] = {
            "message_id": next(self._message_ids),
            "date": int(time.time()),
            "chat": chat,
            "from": user,
        }
        key = "caption" if document else "text"
        if text:
            message[key] = text
            entities = []
            if text.startswith("/"):
                entities.append({"type": "bot_command", "offset": 0, "length": len(text.split()[0])})
            mention = "@" + self.bot_user["username"]
            if mention in text:
                entities.append({"type": "mention", "offset": text.index(mention), "length": len(mention)})
            if entities:
                message["caption_entities" if document else "entities"] = entities
        if document:
            message["document"] = document
        if reply_to:
            message["reply_to_message"] = reply_to
        if forward_from:
            message["forward_origin"] = {"type": "user", "date": int(time.time()), "sender_user": forward_from}
        self._push({"message": message})
        return message

    def document(self, name: str, content: bytes, size: int | None = None) -> dict:
        """A document the bot can download (getFile, then the file URL); `size` may claim more than it holds."""
        file_id = f"file-{len(self.files) + 1}"
        self.files[file_id] = (f"documents/{file_id}-{name}", content)
        return {
            "file_id": file_id,
            "file_unique_id": f"u{file_id}",
            "file_name": name,
            "mime_type": "application/octet-stream",
            "file_size": size if size is not None else len(content),
        }

    def press(self, user: dict, message: dict, data: str) -> None:
        """A press on an inline button of a message the bot sent."""
        self._push(
            {
                "callback_query": {
                    "id": f"cb{next(self._update_ids)}",
                    "from": user,
                    "chat_instance": "test",
                    "data": data,
                    "message": message,
                }
            }
        )

    def refuse(self, method: str, retry_after: int, times: int = 1) -> None:
        """Answer the next `times` calls of `method` with 429 Too Many Requests, retry_after seconds."""
        self.refusals.setdefault(method, []).extend([retry_after] * times)

    def _push(self, update: dict) -> None:
        self.updates.append({"update_id": next(self._update_ids), **update})
        asyncio.get_running_loop().create_task(self._notify())

    async def _notify(self) -> None:
        async with self.changed:
            self.changed.notify_all()

    # watching the bot
    async def wait_for(self, condition: Callable[[list[Call]], Any], what: str, timeout: float = 120.0) -> Any:
        """Until condition(calls) is truthy (returned); fails with `what` after `timeout` seconds."""

        async def until() -> Any:
            async with self.changed:
                while not (result := condition(self.calls)):
                    await self.changed.wait()
                return result

        try:
            return await asyncio.wait_for(until(), timeout)
        except asyncio.TimeoutError:
            seen = [(c.method, c.text[:60]) for c in self.calls if c.method != "getUpdates"]
            raise AssertionError(f"gave up waiting for {what}; calls: {seen}") from None

    async def reply(self, chat_id: int, containing: str, after: int = 0) -> Call:
        """The first sendMessage to `chat_id`, among calls from index `after`, whose text contains `containing`."""
        return await self.wait_for(
            lambda calls: next(
                (
                    c
                    for c in calls[after:]
                    if c.method == "sendMessage" and not c.refused and c.chat_id == chat_id and containing in c.text
                ),
                None,
            ),
            f"a reply to {chat_id} containing {containing!r}",
        )

    def of(self, method: str, chat_id: int | None = None, after: int = 0) -> list[Call]:
        return [
            c
            for c in self.calls[after:]
            if c.method == method and not c.refused and (chat_id is None or c.chat_id == chat_id)
        ]

    def message_of(self, call: Call) -> dict:
        """The message object the fake answered `call` (a sendMessage) with."""
        return call.params["_result"]

    # the API
    async def _api(self, request: web.Request) -> web.Response:
        method = request.match_info["method"]
        if request.match_info["token"] != self.token:
            return web.json_response({"ok": False, "error_code": 401, "description": "Unauthorized"}, status=401)
        params = _params(await request.post() if request.body_exists else {})
        if method == "getUpdates":
            return _ok(await self._get_updates(params))
        call = Call(method, params, time.monotonic())
        refusals = self.refusals.get(method)
        if refusals:
            call.refused = True
            retry_after = refusals.pop(0)
            await self._record(call)
            body = {
                "ok": False,
                "error_code": 429,
                "description": f"Too Many Requests: retry after {retry_after}",
                "parameters": {"retry_after": retry_after},
            }
            return web.json_response(body, status=429)
        handler = getattr(self, f"_m_{method}", None)
        if handler is None or (method == "sendMessageDraft" and not self.drafts):
            call.refused = True
            await self._record(call)
            return web.json_response(
                {"ok": False, "error_code": 404, "description": "Not Found: method not found"}, status=404
            )
        result = handler(params)
        params["_result"] = result
        await self._record(call)
        return _ok(result)

    async def _record(self, call: Call) -> None:
        self.calls.append(call)
        await self._notify()

    async def _get_updates(self, params: dict) -> list[dict]:
        offset = params.get("offset", 0)

        def pending() -> list[dict]:
            return [u for u in self.updates if u["update_id"] >= offset]

        async def until() -> None:
            async with self.changed:
                while not pending():
                    await self.changed.wait()

        try:
            await asyncio.wait_for(until(), params.get("timeout", 0))
        except asyncio.TimeoutError:
            pass
        return pending()

    async def _download(self, request: web.Request) -> web.Response:
        if request.match_info["token"] != self.token:
            return web.Response(status=401)
        path = request.match_info["path"]
        for file_path, content in self.files.values():
            if file_path == path:
                return web.Response(body=content)
        return web.Response(status=404)

    def _message(self, params: dict, **extra: Any) -> dict:
        chat_id = params["chat_id"]
        chat = self.chats.get(chat_id, {"id": chat_id, "type": "private"})
        out = {"message_id": next(self._message_ids), "date": int(time.time()), "chat": chat, "from": self.bot_user}
        if "text" in params:
            out["text"] = params["text"]
        if "reply_markup" in params:
            out["reply_markup"] = params["reply_markup"]
        return {**out, **extra}

    def _m_getMe(self, params: dict) -> dict:
        return self.bot_user

    def _m_deleteWebhook(self, params: dict) -> bool:
        return True

    def _m_setMyCommands(self, params: dict) -> bool:
        return True

    def _m_sendChatAction(self, params: dict) -> bool:
        return True

    def _m_answerCallbackQuery(self, params: dict) -> bool:
        return True

    def _m_sendMessageDraft(self, params: dict) -> bool:
        return True

    def _m_sendMessage(self, params: dict) -> dict:
        return self._message(params)

    def _m_sendDocument(self, params: dict) -> dict:
        return self._message(params)

    def _m_editMessageText(self, params: dict) -> dict:
        return {**self._message(params), "message_id": params["message_id"], "edit_date": int(time.time())}

    def _m_editMessageReplyMarkup(self, params: dict) -> dict:
        return {**self._message(params), "message_id": params["message_id"], "edit_date": int(time.time())}

    def _m_getFile(self, params: dict) -> dict:
        file_id = params["file_id"]
        file_path, content = self.files[file_id]
        return {"file_id": file_id, "file_unique_id": f"u{file_id}", "file_size": len(content), "file_path": file_path}


def _ok(result: Any) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def _params(form: Any) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for key, value in dict(form).items():
        if not isinstance(value, str):
            continue  # an uploaded file: not needed here
        if key in _INTS:
            out[key] = int(value)
        elif key in _JSON:
            out[key] = json.loads(value)
        else:
            out[key] = value
    return out
