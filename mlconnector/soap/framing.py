"""Reading an HTTP request off a socket without blocking, and handing it to cheroot from memory.

:class:`Framing` knows when a request (headers and body, by Content-Length or chunked) is complete;
:class:`ReplayReader` gives cheroot's worker the bytes already read, then the socket.
"""

from __future__ import annotations

import logging
import socket
import time
from typing import Any

from cheroot.makefile import StreamReader

log = logging.getLogger("mlconnector.soap.server")

MORE, DONE, HAND_OVER, REFUSE = "more", "done", "hand over", "refuse"  # what Framing.feed says
RECV_BYTES = 65536
MAX_CHUNK_LINE = 1024


class Framing:
    """Where the first HTTP request in a growing buffer ends, judged the way cheroot will read it.

    :meth:`scan` answers ``MORE`` (keep reading), ``DONE`` (headers and body are all buffered),
    ``HAND_OVER`` (cheroot refuses it from what is buffered: oversized headers or body, bad
    Content-Length, unknown Transfer-Encoding) or ``REFUSE`` (malformed chunked framing that cheroot
    would wait on the socket for). An ``Expect: 100-continue`` header is taken out of the buffer
    (:attr:`wants_continue`): the gatekeeper answers it, so cheroot must not answer it a second time.
    """

    def __init__(self, max_header: int, max_body: int) -> None:
        self.max_header = max_header
        self.max_body = max_body
        self.head_end: int | None = None  # offset just past the blank line that ends the headers
        self.end = 0  # offset just past what cheroot will read, once DONE
        self.wants_continue = False
        self.chunked = False
        self._length = 0
        self._scanned = 0  # how far the search for the end of the headers got
        self._chunk_at = 0  # offset of the next chunk-size line
        self._chunk_counted = 0  # what cheroot's ChunkedRFile counts against max_body up to _chunk_at

    def body_received(self, buf: bytearray) -> int:
        """Body bytes buffered so far (0 while the headers are incomplete)."""
        return 0 if self.head_end is None else len(buf) - self.head_end

    def scan(self, buf: bytearray) -> str:
        """Judge ``buf`` (which may lose its Expect header); see the class docstring."""
        if self.head_end is None:
            end = buf.find(b"\r\n\r\n", max(self._scanned - 3, 0))
            if end < 0:
                self._scanned = len(buf)
                # cheroot reads header lines 256 bytes at a time and refuses once past its limit: with
                # this much buffered it refuses without waiting on the socket.
                return HAND_OVER if len(buf) >= self.max_header + 256 else MORE
            if end + 4 > self.max_header:
                return HAND_OVER
            verdict = self._read_head(buf, end)
            if verdict != MORE:
                return verdict
        if self.chunked:
            return self._scan_chunks(buf)
        assert self.head_end is not None
        self.end = self.head_end + self._length
        return DONE if len(buf) >= self.end else MORE

    def _read_head(self, buf: bytearray, end: int) -> str:
        lines = bytes(buf[:end]).split(b"\r\n")
        if lines[0] == b"":  # cheroot skips one empty line before the request line
            lines = lines[1:]
        if not lines or any(b"\n" in line for line in lines):
            return HAND_OVER  # cheroot answers 400 (bare LF) at or before this line
        http10 = lines[0].rstrip().rsplit(b" ", 1)[-1].startswith(b"HTTP/1.0")
        kept, length, codings, name, dropping = [lines[0]], b"0", [], b"", False
        for line in lines[1:]:
            if line[:1] in (b" ", b"\t"):  # a continuation line: cheroot replaces (or comma-joins) the value
                value = line.strip()
                if dropping:
                    continue
            else:
                key, colon, value = line.partition(b":")
                if not colon:
                    return HAND_OVER  # cheroot answers 400
                name, value = key.strip().lower(), value.strip()
                dropping = name == b"expect" and value.lower() == b"100-continue"
                if dropping:
                    self.wants_continue = not http10  # no 100 Continue to an HTTP/1.0 client
                    continue
            kept.append(line)
            if name == b"content-length":
                length = value  # the last one wins, as in cheroot
            elif name == b"transfer-encoding":
                codings += [c.strip().lower() for c in value.split(b",") if c.strip()]
        head = b"\r\n".join(kept) + b"\r\n\r\n"
        if len(kept) < len(lines):
            buf[: end + 4] = head
        self.head_end = len(head) if len(kept) < len(lines) else end + 4
        try:
            content_length = int(length)  # int() on bytes, exactly as cheroot parses it
        except ValueError:
            return HAND_OVER  # cheroot answers 400
        if content_length > self.max_body:
            return HAND_OVER  # cheroot answers 413 before reading the body
        if codings and not http10:  # cheroot ignores Transfer-Encoding from HTTP/1.0 clients
            if any(c != b"chunked" for c in codings):
                return HAND_OVER  # cheroot answers 501
            self.chunked, self._chunk_at = True, self.head_end
        self._length = max(content_length, 0)
        return MORE

    def _scan_chunks(self, buf: bytearray) -> str:
        """Follow the chunks as cheroot's ChunkedRFile reads them, with its accounting against max_body."""
        while True:
            eol = buf.find(b"\n", self._chunk_at)
            if eol < 0:
                return REFUSE if len(buf) - self._chunk_at > MAX_CHUNK_LINE else MORE
            counted = self._chunk_counted + eol + 1 - self._chunk_at
            if counted > self.max_body:
                return HAND_OVER  # cheroot refuses before reading on
            try:
                size = int(bytes(buf[self._chunk_at:eol]).strip().split(b";", 1)[0], 16)
            except ValueError:
                return REFUSE
            if size <= 0:  # the last chunk; cheroot reads no trailer
                self.end = eol + 1
                return DONE
            if counted + size > self.max_body:
                return HAND_OVER  # cheroot refuses before reading the chunk
            data_end = eol + 1 + size
            if len(buf) < data_end + 2:
                return MORE
            if buf[data_end:data_end + 2] != b"\r\n":
                return REFUSE
            self._chunk_counted, self._chunk_at = counted + size, data_end + 2


class ReplayRaw(socket.SocketIO):
    """The connection's socket, but first the bytes the gatekeeper already read from it."""

    def __init__(self, sock: socket.socket, prefix: bytes, deadline: float, timeout: float) -> None:
        super().__init__(sock, "rb")
        self._socket = sock
        self._prefix = memoryview(prefix)
        self._deadline = deadline
        self._timeout = timeout

    @property
    def remaining(self) -> int:
        """Buffered bytes not yet read."""
        return len(self._prefix)

    def readinto(self, b: Any) -> int | None:
        """Serve the buffered bytes, then the socket."""
        if self._prefix:
            n = min(len(b), len(self._prefix))
            memoryview(b)[:n] = self._prefix[:n]
            self._prefix = self._prefix[n:]
            return n
        # Only a request whose end the gatekeeper misjudged reads on from here while being served: keep
        # even that within the request's deadline, so it cannot hold a worker thread for longer.
        left = self._deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("timed out")  # cheroot answers 408 to this exact text
        self._socket.settimeout(min(left, self._timeout))
        try:
            return super().readinto(b)
        finally:
            self._socket.settimeout(self._timeout)


class ReplayReader(StreamReader):
    """cheroot's buffered reader over a :class:`ReplayRaw`."""

    def __init__(self, raw: ReplayRaw, bufsize: int) -> None:
        super(StreamReader, self).__init__(raw, bufsize)  # StreamReader.__init__ would open its own SocketIO
        self.bytes_read = 0
        self._replay = raw

    def has_data(self) -> bool:
        """Buffered bytes left: a pipelined request (cheroot then processes the connection again at once)."""
        return bool(super().has_data()) or self._replay.remaining > 0  # type: ignore[no-untyped-call]
