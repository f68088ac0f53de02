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
            "--drop-fraction",
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
    # Issue 11.13: `included` is the list the Python API gives, with its count alongside.
    assert summary["num_included"] == 6
    assert summary["included"] == sorted(set(range(8)) - {int(c) for c in summary["dropped"]})
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


def test_the_old_dropout_flag_still_drops_and_says_its_new_name() -> None:
    result = CliRunner().invoke(
        cli, ["simulate", "-n", "30", "-d", "5", "--seed", "3", "--dropout", "0.25", "--json"]
    )
    assert result.exit_code == 0, result.output
    assert "--dropout is now --drop-fraction" in result.output
    assert json.loads(result.output.splitlines()[-1])["num_included"] < 30  # some really dropped


def test_design_dropout_rate_tunes_parameters_and_drops_no_one() -> None:
    # n = 200: large enough for a sparse graph at the default rate (small n get the complete one)
    args = ["simulate", "-n", "200", "-d", "5", "--seed", "3", "--drop-fraction", "0", "--json"]
    low = json.loads(CliRunner().invoke(cli, args).output)
    high = json.loads(CliRunner().invoke(cli, [*args, "--design-dropout-rate", "0.3"]).output)
    assert low["num_included"] == high["num_included"] == 200
    assert high["degree"] > low["degree"]


def test_help_tells_the_two_dropout_options_apart() -> None:
    text = " ".join(CliRunner().invoke(cli, ["simulate", "--help"]).output.split())
    assert "--drop-fraction" in text
    assert "really drops" in text
    assert "--design-dropout-rate" in text
    assert "drops no one" in text
    assert "--dropout " not in text  # the deprecated alias is hidden
    serve = " ".join(CliRunner().invoke(cli, ["serve", "--help"]).output.split())
    assert "--design-dropout-rate" in serve
    assert "--dropout-rate" not in serve


def test_unsafe_threshold_errors_name_the_cli_flag() -> None:
    """Issue 11.13: the CLI says --allow-unsafe, not the Python keyword allow_unsafe=True."""
    unsafe = ["--degree", "9", "--threshold", "3"]
    simulate = CliRunner().invoke(cli, ["simulate", "-n", "10", "-d", "5", *unsafe])
    assert simulate.exit_code == 2
    assert "--allow-unsafe" in simulate.output
    assert "allow_unsafe=True" not in simulate.output
    # serve refuses before it listens or waits for anyone.
    serve = CliRunner().invoke(
        cli, ["serve", "-n", "10", "-d", "4", "--output", "unused", "--insecure", *unsafe]
    )
    assert serve.exit_code == 2
    assert "--allow-unsafe" in serve.output
    allowed = CliRunner().invoke(
        cli, ["simulate", "-n", "10", "-d", "5", "--seed", "1", "--json", "--allow-unsafe", *unsafe]
    )
    assert allowed.exit_code == 0, allowed.output
    assert json.loads(allowed.output)["threshold"] == 3
