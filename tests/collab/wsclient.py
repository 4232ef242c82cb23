"""A minimal RFC 6455 websocket client on asyncio streams, for live tests and bench/collab.py.

Just enough: the opening handshake with Cookie and Origin headers, masked text frames out, text,
ping (answered) and close frames in, fragmented messages reassembled. No extensions; TLS for wss:// URLs.
"""

from __future__ import annotations

import asyncio
import base64
import hashlib
import os
import ssl
import struct
from urllib.parse import urlparse

GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"


class Closed(Exception):
    def __init__(self, code: int | None) -> None:
        super().__init__(f"websocket closed with {code}")
        self.code = code


def _mask(data: bytes, key: bytes) -> bytes:
    n = len(data)
    if not n:
        return data
    pad = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(pad, "big")).to_bytes(n, "big")


class WebSocket:
    def __init__(self, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        self.reader, self.writer = reader, writer
        self.close_code: int | None = None

    @classmethod
    async def connect(
        cls, url: str, *, cookie: str | None = None, origin: str | None = None, tls: ssl.SSLContext | None = None
    ) -> WebSocket:
        parts = urlparse(url)
        secure = parts.scheme == "wss"
        host, port = parts.hostname or "127.0.0.1", parts.port or (443 if secure else 80)
        context = (tls or ssl.create_default_context()) if secure else None
        reader, writer = await asyncio.open_connection(host, port, limit=2**24, ssl=context)
        key = base64.b64encode(os.urandom(16)).decode()
        lines = [
            f"GET {parts.path or '/'}{'?' + parts.query if parts.query else ''} HTTP/1.1",
            f"Host: {host}:{port}",
            "Upgrade: websocket",
            "Connection: Upgrade",
            f"Sec-WebSocket-Key: {key}",
            "Sec-WebSocket-Version: 13",
        ]
        if origin:
            lines.append(f"Origin: {origin}")
        if cookie:
            lines.append(f"Cookie: {cookie}")
        writer.write(("\r\n".join(lines) + "\r\n\r\n").encode())
        head = await reader.readuntil(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status:
            writer.close()
            raise Closed(int(status.split()[1]) if len(status.split()) > 1 else None)
        accept = base64.b64encode(hashlib.sha1((key + GUID).encode()).digest())
        if b"sec-websocket-accept: " + accept.lower() not in head.lower():
            writer.close()
            raise Closed(None)
        return cls(reader, writer)

    def _frame(self, opcode: int, payload: bytes) -> bytes:
        n = len(payload)
        if n < 126:
            header = struct.pack("!BB", 0x80 | opcode, 0x80 | n)
        elif n < 2**16:
            header = struct.pack("!BBH", 0x80 | opcode, 0x80 | 126, n)
        else:
            header = struct.pack("!BBQ", 0x80 | opcode, 0x80 | 127, n)
        key = os.urandom(4)
        return header + key + _mask(payload, key)

    async def send(self, text: str) -> None:
        if self.close_code is not None:
            raise Closed(self.close_code)
        self.writer.write(self._frame(0x1, text.encode()))
        if self.writer.transport.get_write_buffer_size() > 2**20:
            await self.writer.drain()

    async def recv(self) -> str:
        """The next text message; raises :class:`Closed` with the server's close code."""
        parts: list[bytes] = []
        while True:
            try:
                first, second = await self.reader.readexactly(2)
            except (asyncio.IncompleteReadError, ConnectionError):
                self.close_code = self.close_code or 1006
                raise Closed(self.close_code) from None
            fin, opcode, n = first & 0x80, first & 0x0F, second & 0x7F
            if n == 126:
                (n,) = struct.unpack("!H", await self.reader.readexactly(2))
            elif n == 127:
                (n,) = struct.unpack("!Q", await self.reader.readexactly(8))
            key = await self.reader.readexactly(4) if second & 0x80 else b""
            payload = await self.reader.readexactly(n)
            if key:
                payload = _mask(payload, key)
            if opcode == 0x8:  # close
                self.close_code = struct.unpack("!H", payload[:2])[0] if len(payload) >= 2 else 1005
                try:
                    self.writer.write(self._frame(0x8, payload[:2]))
                    self.writer.close()
                except ConnectionError:
                    pass
                raise Closed(self.close_code)
            if opcode == 0x9:  # ping
                self.writer.write(self._frame(0xA, payload))
                continue
            if opcode == 0xA:
                continue
            parts.append(payload)
            if fin:
                return b"".join(parts).decode()

    async def close(self, code: int = 1000) -> None:
        if self.close_code is None:
            self.close_code = code
            try:
                self.writer.write(self._frame(0x8, struct.pack("!H", code)))
                await self.writer.drain()
            except ConnectionError:
                pass
        self.writer.close()
