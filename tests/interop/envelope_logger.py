"""An aiosmtpd handler that prints each message with its envelope, for the interop tests.

Run as: PYTHONPATH=tests/interop python -m aiosmtpd -n -c envelope_logger.EnvelopeLogger -l HOST:PORT
"""
import sys


class EnvelopeLogger:
    async def handle_DATA(self, server, session, envelope):
        print(f"MAIL FROM: {envelope.mail_from}")
        for recipient in envelope.rcpt_tos:
            print(f"RCPT TO: {recipient}")
        print("---------- MESSAGE FOLLOWS ----------")
        print(envelope.content.decode("utf-8", errors="replace"))
        print("------------ END MESSAGE ------------")
        sys.stdout.flush()
        return "250 2.0.0 Message accepted for delivery"
