#!/usr/bin/python3
"""A raw-socket streaming chat client for the gateway tests: it sends one
stream request with ignore_eos and either leaves after N events (the client
disconnect case) or reads until the server closes and saves the raw bytes.

  stream_client.py PORT KEY leave N          (KEY "-": no Authorization)
  stream_client.py PORT KEY save FILE MAX_TOKENS
"""
import json
import socket
import sys

port, key, mode = int(sys.argv[1]), sys.argv[2], sys.argv[3]
max_tokens = 5000 if mode == "leave" else int(sys.argv[5])
s = socket.create_connection(("127.0.0.1", port), timeout=10)
b = json.dumps({"model": "test-model", "messages": [{"role": "user", "content": "go"}], "max_tokens": max_tokens,
                "ignore_eos": True, "stream": True}).encode()
auth = b"" if key == "-" else b"Authorization: Bearer %s\r\n" % key.encode()
close = b"Connection: close\r\n" if mode == "save" else b""
s.sendall(b"POST /v1/chat/completions HTTP/1.1\r\nHost: x\r\n%s%sContent-Type: application/json\r\n"
          b"Content-Length: %d\r\n\r\n" % (auth, close, len(b)) + b)
got = b""
if mode == "leave":
    while got.count(b"data: ") < int(sys.argv[4]):
        d = s.recv(4096)
        if not d:
            sys.exit("FAIL: stream ended early")
        got += d
    s.close()
    sys.exit(0)
while True:
    d = s.recv(65536)
    if not d:
        break
    got += d
open(sys.argv[4], "wb").write(got)
