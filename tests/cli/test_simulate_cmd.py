"""`secagg simulate` through click's runner."""

from __future__ import annotations

import json

from click.testing import CliRunner

from secagg.cli.main import cli


def test_json_output() -> None:
    result = CliRunner().invoke(
        cli,
        [
            "simulate",
            "--clients",
            "8",
            "--dim",
            "50",
            "--bits",
            "16",
            # 2 of 8 dropping: the default threshold for n = 8 (7, its privacy floor) survives
            # one, so this test names the complete graph with the rule's threshold itself.
            "--degree",
            "7",
            "--dropout",
            "0.25",
            "--dropout-round",
            "masked-input",
            "--seed",
            "4",
            "--json",
        ],
    )
    assert result.exit_code == 0, result.output
    summary = json.loads(result.output)
    assert summary["matches_plain_sum"] is True
    assert summary["included"] == 6
    assert 0 < summary["parameters"]["abort_probability"] < 1  # the figure for the chosen k, t
    assert len(summary["dropped"]) == 2
    assert summary["bytes"]["client_sent_mean"] > 50 * 4
    assert set(summary["timings"]) >= {"advertise-keys", "unmasking"}


def test_human_output() -> None:
    result = CliRunner().invoke(cli, ["simulate", "-n", "6", "-d", "20", "--seed", "1"])
    assert result.exit_code == 0, result.output
    assert "MATCHES" in result.output
    assert "time per round" in result.output


def test_bad_option_is_a_clean_error() -> None:
    result = CliRunner().invoke(cli, ["simulate", "--clients", "1"])
    assert result.exit_code == 2
    assert "Traceback" not in result.output


def test_workers_option() -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "-n", "6", "-d", "3000", "--seed", "2", "--workers", "2", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert json.loads(result.output)["matches_plain_sum"] is True
