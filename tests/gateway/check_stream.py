#!/usr/bin/python3
"""Checks a streamed chat completion byte by byte against vLLM's and OpenAI's
stream format: one `data: {json}` line per event, events separated by a blank
line, a first chunk with the assistant role, N content chunks, a final chunk
with finish_reason "length", one usage chunk (choices: []), then `data: [DONE]`.

  check_stream.py HEAD_FILE BODY_FILE N MODEL   (writes the text to BODY_FILE.text)
"""
import json
import sys

head = open(sys.argv[1], "rb").read().decode()
raw = open(sys.argv[2], "rb").read()
n, model = int(sys.argv[3]), sys.argv[4]
if not head.startswith("HTTP/1.1 200") or "content-type: text/event-stream" not in head.lower():
    sys.exit(f"FAIL: stream head: {head!r}")
events = raw.split(b"\n\n")
if events[-1] != b"":
    sys.exit(f"FAIL: bytes after the last event: {events[-1]!r}")
events = events[:-1]
if events[-1] != b"data: [DONE]":
    sys.exit(f"FAIL: last event is {events[-1]!r}, not data: [DONE]")
chunks = []
for e in events[:-1]:
    if not e.startswith(b"data: ") or b"\n" in e:
        sys.exit(f"FAIL: event is not one data line: {e!r}")
    chunks.append(json.loads(e[6:]))
ids = {c["id"] for c in chunks}
if len(ids) != 1 or not next(iter(ids)).startswith("chatcmpl-"):
    sys.exit(f"FAIL: ids {ids}")
for c in chunks:
    if c["object"] != "chat.completion.chunk" or c["model"] != model or not isinstance(c["created"], int):
        sys.exit(f"FAIL: chunk fields: {c}")
if len(chunks) != n + 3:
    sys.exit(f"FAIL: {len(chunks)} chunks, want {n + 3} (role, {n} content, finish, usage)")
first, content, final, usage = chunks[0], chunks[1:1 + n], chunks[1 + n], chunks[2 + n:]
if first["choices"][0]["delta"].get("role") != "assistant" or first["choices"][0]["finish_reason"] is not None:
    sys.exit(f"FAIL: first chunk: {first}")
for c in content:
    ch = c["choices"][0]
    if ch["index"] != 0 or ch["finish_reason"] is not None or not ch["delta"].get("content") or "role" in ch["delta"]:
        sys.exit(f"FAIL: content chunk: {c}")
if final["choices"][0]["finish_reason"] != "length" or final["choices"][0]["delta"].get("content"):
    sys.exit(f"FAIL: final chunk: {final}")
if len(usage) != 1 or usage[0]["choices"] != [] or usage[0]["usage"]["completion_tokens"] != n or \
   usage[0]["usage"]["total_tokens"] != usage[0]["usage"]["prompt_tokens"] + n:
    sys.exit(f"FAIL: usage chunks: {usage}")
text = "".join(c["choices"][0]["delta"]["content"] for c in content)
print(f"stream: role chunk, {n} content chunks, finish length, usage, [DONE]: {text!r}")
open(sys.argv[2] + ".text", "w").write(text)
