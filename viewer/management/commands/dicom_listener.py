"""``manage.py dicom_listener [--host H] [--port 11112] [--ae-title CROSSREAD]``: the DIMSE listener.

Its own process beside the web server (``scripts/demo.sh`` starts both): C-ECHO, C-STORE into the
project the called AE title names, C-FIND, C-GET and C-MOVE for configured nodes
(:mod:`viewer.dimse.server`, ``docs/dicomweb.md``).
"""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand, CommandError

from viewer.dimse import rules, server


class Command(BaseCommand):
    help = "Listen for DICOM associations (DIMSE: C-ECHO, C-STORE, C-FIND, C-GET, C-MOVE)."

    def add_arguments(self, parser: Any) -> None:
        parser.add_argument("--host", default="127.0.0.1", help="address to listen on (0.0.0.0: every one)")
        parser.add_argument("--port", type=int, default=11112)
        parser.add_argument("--ae-title", default="CROSSREAD",
                            help="the listener's own AE title (the calling AE title of C-MOVE associations)")

    def handle(self, *args: Any, **options: Any) -> None:
        if not rules.valid_ae_title(options["ae_title"]):
            raise CommandError("--ae-title must be 1 to 16 characters, no backslash.")
        if not 0 < options["port"] < 65536:
            raise CommandError("--port must be between 1 and 65535.")
        self.stdout.write(f"DICOM listener {options['ae_title']} on {options['host']}:{options['port']}", ending="\n")
        self.stdout.flush()
        try:
            server.serve(options["host"], options["port"], options["ae_title"])
        except KeyboardInterrupt:
            pass
