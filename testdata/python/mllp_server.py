#!/usr/bin/python3
"""An MLLP server built on python-hl7's asyncio API (Debian python3-hl7).

Used by hl7broker's interop tests and benchmarks as real third-party
software. It listens on 127.0.0.1, prints "listening on PORT" once ready,
and answers each message:

  ack    parse it with python-hl7 and reply with message.create_ack("AA")
  fixed  read the raw block and reply with one fixed ACK (a trivial
         handler, for measuring raw MLLP round trips)

Usage: mllp_server.py [ack|fixed] [PORT]
"""
import asyncio
import sys

import hl7
from hl7.mllp import start_hl7_server

FIXED_ACK = b"MSH|^~\\&|PY|PY|||20260101000000||ACK^A01^ACK|1|P|2.5\rMSA|AA|1\r"


async def answer_parsed(reader, writer):
    try:
        while not writer.is_closing():
            message = await reader.readmessage()
            writer.writemessage(message.create_ack("AA"))
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def answer_fixed(reader, writer):
    try:
        while not writer.is_closing():
            await reader.readblock()
            writer.writeblock(FIXED_ACK)
            await writer.drain()
    except asyncio.IncompleteReadError:
        pass
    finally:
        writer.close()


async def main():
    mode = sys.argv[1] if len(sys.argv) > 1 else "ack"
    port = int(sys.argv[2]) if len(sys.argv) > 2 else 0
    handler = answer_fixed if mode == "fixed" else answer_parsed
    server = await start_hl7_server(handler, "127.0.0.1", port, encoding="utf-8", limit=16 << 20)
    print("listening on %d" % server.sockets[0].getsockname()[1], flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass
