"""The --query/--values file formats and the CLI's refusal of contradictory options."""

from __future__ import annotations

from pathlib import Path

import click
import pytest

from secagg.analytics import AnalyticsRound, DistributedDP, GroupBy, Histogram, Mean
from secagg.cli.analytics_io import load_spec, read_values
from secagg.errors import ConfigError


def _write(tmp: Path, name: str, text: str) -> Path:
    path = tmp / name
    path.write_text(text)
    return path


def test_bare_query_takes_rules_from_options(tmp_path: Path) -> None:
    query = Histogram(domain=["a", "b"])
    path = _write(tmp_path, "q.json", query.to_json())
    spec = load_spec(path, 2.0, 1e-7, 25)
    assert spec == AnalyticsRound(query, min_clients=25, dp=DistributedDP(2.0, 1e-7))
    default = load_spec(path, None, 1e-6, None)
    assert default is not None
    assert default.min_clients == 10
    assert default.dp is None


def test_round_file_carries_its_own_rules(tmp_path: Path) -> None:
    spec = AnalyticsRound(Histogram(domain=["a"]), min_clients=50, dp=DistributedDP(1.0))
    path = _write(tmp_path, "round.json", spec.to_json())
    loaded = load_spec(path, None, 1e-6, None)
    assert loaded is not None
    assert loaded.digest() == spec.digest()
    with pytest.raises(click.UsageError, match="its own release rules"):
        load_spec(path, 3.0, 1e-6, None)
    with pytest.raises(click.UsageError, match="go with --query"):
        load_spec(None, 3.0, 1e-6, None)


def test_values_files(tmp_path: Path) -> None:
    hist = AnalyticsRound(Histogram(domain=["a", "b"]))
    assert read_values(_write(tmp_path, "v.txt", "a\n\n b \nzz\n"), hist) == ["a", "b", "zz"]
    assert read_values(_write(tmp_path, "v.json", '["a", 3]'), hist) == ["a", 3]
    mixed = AnalyticsRound(Histogram(domain=["7", 8, "x"]))
    assert read_values(_write(tmp_path, "i.txt", "7\n8\nx\n9\n"), mixed) == ["7", 8, "x", 9]
    mean = AnalyticsRound(Mean(bounds=(0, 1)))
    assert read_values(_write(tmp_path, "m.txt", "0.5\n1\n"), mean) == [0.5, 1.0]
    with pytest.raises(ConfigError, match="number"):
        read_values(_write(tmp_path, "bad.txt", "x\n"), mean)
    group = AnalyticsRound(GroupBy([("v", ["1"]), ("c", ["x", "y"])]))
    assert read_values(_write(tmp_path, "g.txt", "1,x\n1, y\n"), group) == [("1", "x"), ("1", "y")]
    with pytest.raises(ConfigError, match="JSON list"):
        read_values(_write(tmp_path, "broken.json", "[1, "), hist)


def test_invalid_round_files_are_refused(tmp_path: Path) -> None:
    for text in (
        '{"kind": "analytics-round", "version": 2}',
        '{"kind": "analytics-round", "version": 1, "query": {"kind": "query", "version": 1, '
        '"type": "count"}, "surprise": 1}',
        '{"kind": "analytics-round", "version": 1, "query": {"kind": "query", "version": 1, '
        '"type": "count"}, "dp": {"epsilon": 1, "sigma": 3}}',
        '{"kind": "other"}',
    ):
        with pytest.raises(ConfigError):
            load_spec(_write(tmp_path, "r.json", text), None, 1e-6, None)
