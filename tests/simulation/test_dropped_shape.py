"""One shape for ``dropped``: simulate's result holds the server's Dropped(round, reason, detail).

The JSON report keeps its keys (``{"round": label, "reason": code}`` per client).
"""

from __future__ import annotations

import json

import numpy as np
from click.testing import CliRunner

import secagg
from secagg.cli.main import cli
from secagg.protocol.dropped import Dropped
from secagg.protocol.messages import Round
from secagg.reasons import DropReason


def test_simulate_reports_drops_as_dropped_records() -> None:
    x = np.random.default_rng(3).integers(0, 2**16, size=(8, 20), dtype=np.uint64)
    result = secagg.simulate(x, bits=16, degree=7, dropout={1: "share-keys", 6: 2}, seed=2)
    assert set(result.dropped) == {1, 6}
    for d in result.dropped.values():
        assert isinstance(d, Dropped)
        assert d.reason is DropReason.NO_RESPONSE
        assert d.detail  # the server's detail travels with it
    assert result.dropped[1].round is Round.SHARE_KEYS
    assert result.dropped[6].round is Round.MASKED_INPUT
    round_, reason, _detail = result.dropped[1]  # still unpacks like the session's tuples
    assert (round_, reason) == (Round.SHARE_KEYS, DropReason.NO_RESPONSE)


def test_dropped_to_json_and_the_cli_report_keep_the_report_keys() -> None:
    d = Dropped(Round.MASKED_INPUT, DropReason.NO_RESPONSE, "silent")
    assert d.to_json() == {"round": "masked-input", "reason": "no-response", "detail": "silent"}
    args = "simulate -n 8 -d 10 -b 16 -k 7 --drop-fraction 0.25 --dropout-round share-keys"
    out = CliRunner().invoke(cli, [*args.split(), "--seed", "4", "--json"])
    assert out.exit_code == 0, out.output
    dropped = json.loads(out.output)["dropped"]
    assert len(dropped) == 2
    assert all(v == {"round": "share-keys", "reason": "no-response"} for v in dropped.values())
