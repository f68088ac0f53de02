"""Round.parse: the one parser for a round given by number or label (CLI, simulate)."""

from __future__ import annotations

import pytest

from secagg.errors import ConfigError
from secagg.protocol.messages import Round


@pytest.mark.parametrize("r", list(Round))
def test_every_round_parses_from_itself_its_number_and_its_label(r: Round) -> None:
    assert Round.parse(r) is r
    assert Round.parse(int(r)) is r
    assert Round.parse(str(int(r))) is r
    assert Round.parse(r.label) is r
    assert Round.parse(f" {r.name} ") is r  # case, underscores and spaces are forgiven


@pytest.mark.parametrize("bad", ["unmask", "5", -1, 5, True, 2.0, None, ""])
def test_anything_else_is_a_config_error(bad: object) -> None:
    with pytest.raises(ConfigError, match="round"):
        Round.parse(bad)  # type: ignore[arg-type]
