"""The public surface: small, explicit, and light to import."""

from __future__ import annotations

import subprocess
import sys

import natlens


def test_every_public_name_exists() -> None:
    missing = [name for name in natlens.__all__ if not hasattr(natlens, name)]
    assert missing == []
    assert len(natlens.__all__) == len(set(natlens.__all__))


def test_import_natlens_stays_light() -> None:
    heavy = ["altair", "ipywidgets", "IPython", "jupyterlab", "azure", "vl_convert", "anywidget"]
    code = (
        "import sys, natlens\n"
        f"heavy = {heavy!r}\n"
        "print([m for m in heavy if any(k == m or k.startswith(m + '.') for k in sys.modules)])"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True
    )
    assert loaded.stdout.strip() == "[]"


def test_schema_is_declared_once_with_utc_microseconds() -> None:
    assert natlens.FLOW_SCHEMA.names() == [
        "time",
        "source_ip",
        "destination_ip",
        "nat_gateway_ip",
        "packets_sent",
        "packets_received",
        "packets_sent_dropped",
        "packets_received_dropped",
        "bytes_sent",
        "bytes_received",
        "resource_id",
    ]
    assert str(natlens.FLOW_SCHEMA["time"]) == "Datetime(time_unit='us', time_zone='UTC')"
