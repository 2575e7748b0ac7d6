"""A real SMTP server for the alarm email tests: aiosmtpd (from PyPI) on
127.0.0.1 at the port given, printing each message it accepts as one JSON
line on stdout ({"from", "to", "data"}), after a "ready" line.

Usage: python sink.py PORT
"""
import json
import sys
import threading

from aiosmtpd.controller import Controller


class Print:
    async def handle_DATA(self, server, session, envelope):
        line = {
            "from": envelope.mail_from,
            "to": envelope.rcpt_tos,
            "data": envelope.content.decode("utf-8", "replace"),
        }
        print(json.dumps(line), flush=True)
        return "250 OK"


controller = Controller(Print(), hostname="127.0.0.1", port=int(sys.argv[1]))
controller.start()
print("ready", flush=True)
threading.Event().wait()
