#!/usr/bin/python3
"""A small HTTP/1.1 peer for slip-loadgen's end-to-end test (stdlib only).

GET /        -> 200 with a short Content-Length body.
POST /v1/chat/completions, /v1/completions
             -> 200 text/event-stream, chunked, in the OpenAI/vLLM format:
                a role chunk (chat), max_tokens content chunks --delay-ms apart,
                a finish chunk, a usage chunk when asked, then [DONE].
GET /stats   -> JSON request counts (not counted itself).
Anything else -> 404. The chosen port goes to --port-file once listening.
"""
import argparse
import json
import os
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

COUNTS = {"get": 0, "chat": 0, "completions": 0, "not_found": 0}
LOCK = threading.Lock()


def count(key):
    with LOCK:
        COUNTS[key] += 1


class Handler(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    disable_nagle_algorithm = True  # each token leaves when written
    delay_s = 0.002

    def log_message(self, *args):
        pass

    def send_body(self, status, body, ctype="text/plain"):
        self.send_response(status)
        self.send_header("Content-Type", ctype)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def do_GET(self):
        if self.path == "/stats":
            with LOCK:
                body = json.dumps(COUNTS).encode()
            self.send_body(200, body, "application/json")
        elif self.path == "/":
            count("get")
            self.send_body(200, b"hello from sse_server\n")
        else:
            count("not_found")
            self.send_body(404, b"not found\n")

    def chunk(self, data):
        self.wfile.write(b"%x\r\n%s\r\n" % (len(data), data))

    def event(self, obj):
        self.chunk(b"data: " + json.dumps(obj).encode() + b"\n\n")

    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", "0")))
        chat = self.path == "/v1/chat/completions"
        if not chat and self.path != "/v1/completions":
            count("not_found")
            self.send_body(404, b"not found\n")
            return
        count("chat" if chat else "completions")
        req = json.loads(body)
        n = int(req.get("max_tokens", 16))
        base = {"id": "cmpl-1", "object": "chat.completion.chunk" if chat else "text_completion",
                "created": int(time.time()), "model": req.get("model", "")}

        def piece(text, finish=None, role=False):
            if chat:
                delta = {"role": "assistant", "content": text} if role else ({"content": text} if text else {})
                choice = {"index": 0, "delta": delta, "logprobs": None, "finish_reason": finish}
            else:
                choice = {"index": 0, "text": text, "logprobs": None, "finish_reason": finish}
            return dict(base, choices=[choice])

        self.send_response(200)
        self.send_header("Content-Type", "text/event-stream; charset=utf-8")
        self.send_header("Cache-Control", "no-cache")
        self.send_header("Transfer-Encoding", "chunked")
        self.end_headers()
        if chat:
            self.event(piece("", role=True))
        for i in range(n):
            time.sleep(self.delay_s)
            self.event(piece(" tok%d" % i))
        self.event(piece("", finish="length"))
        if req.get("stream_options", {}).get("include_usage"):
            self.event(dict(base, choices=[], usage={"prompt_tokens": 1, "completion_tokens": n,
                                                     "total_tokens": n + 1}))
        self.chunk(b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, default=0)
    ap.add_argument("--port-file", required=True)
    ap.add_argument("--delay-ms", type=float, default=2.0)
    args = ap.parse_args()
    Handler.delay_s = args.delay_ms / 1000.0
    server = ThreadingHTTPServer(("127.0.0.1", args.port), Handler)
    server.daemon_threads = True
    tmp = args.port_file + ".tmp"
    with open(tmp, "w") as f:
        f.write(str(server.server_address[1]))
    os.rename(tmp, args.port_file)
    server.serve_forever()


if __name__ == "__main__":
    main()
