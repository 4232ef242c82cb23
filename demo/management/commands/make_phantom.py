"""``manage.py make_phantom OUT_DIR [--slices 120] [--size 512] [--seed 0]``: write the synthetic CT phantom."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from demo import phantom


class Command(BaseCommand):
    help = (
        "Write the SYNTHETIC CT phantom (not patient data): a baseline and an 8-week follow-up "
        "CT study of the made-up patient PHANTOM-001 with lesions of known size and regions of "
        "known HU, as OUT_DIR/baseline/CT_0001.dcm..., OUT_DIR/followup/... and "
        "OUT_DIR/phantom.json (the ground truth). See docs/phantom.md."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("out_dir", type=Path, help="folder to write into (created if missing)")
        parser.add_argument(
            "--slices", type=int, default=phantom.DEFAULT_SLICES, help="slices per study over 300 mm (default 120)"
        )
        parser.add_argument(
            "--size", type=int, default=phantom.DEFAULT_SIZE, help="rows = columns over 358.4 mm (default 512)"
        )
        parser.add_argument("--seed", type=int, default=0, help="seed of the image noise (default 0)")
        parser.add_argument(
            "--noise",
            type=float,
            default=phantom.DEFAULT_NOISE_SIGMA,
            help="noise sigma in HU (default 8; 0 for noise-free images)",
        )

    def handle(self, *args: Any, **options: Any) -> None:
        start = time.monotonic()
        try:
            files = phantom.write_phantom_studies(
                options["out_dir"],
                slices=options["slices"],
                size=options["size"],
                seed=options["seed"],
                noise_sigma=options["noise"],
            )
        except (ValueError, FileExistsError) as exc:
            raise CommandError(str(exc)) from None
        out_dir: Path = options["out_dir"]
        for timepoint in phantom.TIMEPOINTS:
            count = sum(1 for f in files if f.parent.name == timepoint)
            self.stdout.write(f"{out_dir / timepoint}: {count} synthetic CT images")
        self.stdout.write(f"{out_dir / 'phantom.json'}: ground truth (lesions, regions of known HU)")
        self.stdout.write(f"{len(files)} files in {time.monotonic() - start:.1f} s (synthetic phantom, not patient data)")
