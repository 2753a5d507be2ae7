"""A tiny Socket Mode websocket server on 127.0.0.1, stdlib only.

Why stdlib: slack_sdk's builtin SocketModeClient speaks plain RFC 6455 over a raw socket, so a
hundred lines of framing is enough and keeps the test dependencies to slack_sdk itself. The server
behaves like Slack's: it greets with `hello`, answers pings with pongs (the client drops a
connection whose pongs stop), pushes envelopes the test chooses, and records the client's acks.
"""

from __future__ import annotations

import base64
import hashlib
import json
import socket
import threading
import time
import uuid
from typing import Any

_WEBSOCKET_GUID = "258EAFA5-E914-47DA-95CA-C5AB0DC85B11"
_OPCODE_CONTINUATION, _OPCODE_TEXT, _OPCODE_CLOSE, _OPCODE_PING, _OPCODE_PONG = 0x0, 0x1, 0x8, 0x9, 0xA


def _encode_frame(opcode: int, payload: bytes) -> bytes:
    """A single unmasked server frame (servers never mask, RFC 6455 §5.1)."""
    header = bytes([0x80 | opcode])
    length = len(payload)
    if length < 126:
        header += bytes([length])
    elif length < 1 << 16:
        header += bytes([126]) + length.to_bytes(2, "big")
    else:
        header += bytes([127]) + length.to_bytes(8, "big")
    return header + payload


def _read_exactly(connection: socket.socket, count: int) -> bytes:
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            raise ConnectionError("the Socket Mode client closed the connection")
        data += chunk
    return data


def _read_frame(connection: socket.socket) -> tuple[int, bytes]:
    first, second = _read_exactly(connection, 2)
    opcode = first & 0x0F
    length = second & 0x7F
    if length == 126:
        length = int.from_bytes(_read_exactly(connection, 2), "big")
    elif length == 127:
        length = int.from_bytes(_read_exactly(connection, 8), "big")
    mask = _read_exactly(connection, 4) if second & 0x80 else b"\x00\x00\x00\x00"
    payload = _read_exactly(connection, length)
    return opcode, bytes(byte ^ mask[index % 4] for index, byte in enumerate(payload))


class FakeSocketModeServer:
    """Accepts Socket Mode clients; `send_envelope` pushes to every open connection."""

    def __init__(self, app_id: str = "A0000FAKE") -> None:
        self.app_id = app_id
        self.acks: list[dict[str, Any]] = []
        self.sent: list[dict[str, Any]] = []
        self._listener = socket.create_server(("127.0.0.1", 0))
        self._connections: list[socket.socket] = []
        self._lock = threading.Condition()
        self._stopped = False
        self._accept_thread = threading.Thread(target=self._accept_forever, daemon=True)

    @property
    def port(self) -> int:
        port: int = self._listener.getsockname()[1]
        return port

    @property
    def url(self) -> str:
        """What apps.connections.open hands out; a fresh ticket each time, like Slack."""
        return f"ws://127.0.0.1:{self.port}/link/?ticket={uuid.uuid4()}&app_id={self.app_id}"

    @property
    def connection_count(self) -> int:
        with self._lock:
            return len(self._connections)

    def start(self) -> None:
        self._accept_thread.start()

    def stop(self) -> None:
        self._stopped = True
        self._listener.close()
        with self._lock:
            for connection in self._connections:
                connection.close()
            self._connections.clear()

    def wait_for_connection(self, timeout: float = 5.0) -> None:
        with self._lock:
            if not self._lock.wait_for(lambda: bool(self._connections), timeout):
                raise AssertionError(
                    f"no Socket Mode client connected within {timeout} s; did the app call "
                    "apps.connections.open with an xapp- token and start its SocketModeClient?"
                )

    def send_envelope(self, envelope: dict[str, Any]) -> str:
        """Push an envelope (an `envelope_id` is added when missing); returns the envelope id."""
        envelope = {"envelope_id": str(uuid.uuid4()), "retry_attempt": 0, **envelope}
        frame = _encode_frame(_OPCODE_TEXT, json.dumps(envelope).encode())
        with self._lock:
            if not self._connections:
                raise AssertionError(
                    "send_envelope: no Socket Mode client is connected (wait_for_connection)"
                )
            for connection in self._connections:
                connection.sendall(frame)
            self.sent.append(envelope)
        envelope_id: str = envelope["envelope_id"]
        return envelope_id

    def wait_for_ack(self, envelope_id: str, timeout: float = 5.0) -> dict[str, Any]:
        """The client's ack for one envelope (Slack wants it within 3 s)."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while True:
                for ack in self.acks:
                    if ack.get("envelope_id") == envelope_id:
                        return ack
                remaining = deadline - time.monotonic()
                if remaining <= 0:
                    raise AssertionError(
                        f"no ack for envelope {envelope_id} within {timeout} s; acks so far: {self.acks}"
                    )
                self._lock.wait(remaining)

    def _accept_forever(self) -> None:
        while not self._stopped:
            try:
                connection, _ = self._listener.accept()
            except OSError:
                return  # listener closed by stop()
            threading.Thread(target=self._serve, args=(connection,), daemon=True).start()

    def _handshake(self, connection: socket.socket) -> None:
        request = b""
        while b"\r\n\r\n" not in request:
            chunk = connection.recv(1024)
            if not chunk:
                raise ConnectionError("the client closed the connection during the handshake")
            request += chunk
        headers = {}
        for line in request.decode().split("\r\n")[1:]:
            name, _, value = line.partition(":")
            headers[name.strip().lower()] = value.strip()
        digest = hashlib.sha1((headers["sec-websocket-key"] + _WEBSOCKET_GUID).encode()).digest()
        accept = base64.b64encode(digest).decode()
        connection.sendall(
            (
                "HTTP/1.1 101 Switching Protocols\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                f"Sec-WebSocket-Accept: {accept}\r\n\r\n"
            ).encode()
        )

    def _serve(self, connection: socket.socket) -> None:
        try:
            self._handshake(connection)
            hello = {"type": "hello", "num_connections": 1, "connection_info": {"app_id": self.app_id}}
            with self._lock:
                connection.sendall(_encode_frame(_OPCODE_TEXT, json.dumps(hello).encode()))
                self._connections.append(connection)
                self._lock.notify_all()
            self._read_until_closed(connection)
        except (OSError, ConnectionError, KeyError):
            pass  # a client going away is normal; the test sees it through connection_count
        finally:
            with self._lock:
                if connection in self._connections:
                    self._connections.remove(connection)
                self._lock.notify_all()
            connection.close()

    def _read_until_closed(self, connection: socket.socket) -> None:
        message = b""
        while True:
            opcode, payload = _read_frame(connection)
            if opcode == _OPCODE_PING:
                with self._lock:
                    connection.sendall(_encode_frame(_OPCODE_PONG, payload))
            elif opcode == _OPCODE_CLOSE:
                with self._lock:
                    connection.sendall(_encode_frame(_OPCODE_CLOSE, payload[:2]))
                return
            elif opcode in (_OPCODE_TEXT, _OPCODE_CONTINUATION):
                message += payload
                self._record(message)
                message = b""

    def _record(self, message: bytes) -> None:
        with self._lock:
            self.acks.append(json.loads(message))
            self._lock.notify_all()
