"""A short fault campaign (bench/fault_campaign.py): bookings through a real gateway process
in front of the UH, DRS and Totalmobile simulators while timeouts, 500s, connections dropped
after commit, session and token expiry, a simulator restart and a gateway kill -9 happen at
random (fixed seed). Afterwards nothing is lost, duplicated or orphaned.

No timing assertions: deadlines are generous bounds on a loaded machine, not measurements.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from bench.fault_campaign import CampaignConfig, campaign, table

pytestmark = pytest.mark.slow


async def test_short_fault_campaign_loses_duplicates_and_orphans_nothing(tmp_path: Path) -> None:
    cfg = CampaignConfig(
        bookings=80,
        seed=7,
        concurrency=8,
        sim_restarts=1,
        gateway_kills=1,
        time_limit=400.0,
        drain_limit=300.0,
    )
    report = await campaign(cfg, tmp_path)
    summary = table(report)
    assert sum(report["faults_injected"].values()) >= 10, report["faults_injected"]
    assert report["faults_injected"].get("gateway_kill_9_restart") == 1, summary
    assert report["intents_without_slots"] == 0, summary
    assert not report["intents_unresolved"], summary
    assert report["confirmed_to_callers"] >= cfg.bookings * 0.9, summary
    assert report["lost_n"] == 0, (report["lost"], summary)
    assert report["duplicated_n"] == 0, (report["duplicated"], summary)
    assert report["orphaned_n"] == 0, (report["orphaned"], summary)
    # every error path above, and nothing a resident typed reached the gateway's logs
    assert report["log_lines_scanned"] > 500, summary
    assert report["personal_data_in_logs"] == [], report["personal_data_in_logs"]
