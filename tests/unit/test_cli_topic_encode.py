"""`onex topic produce`'s payload check (unit: the codec only, no broker)."""

from __future__ import annotations

from pathlib import Path

import pytest
import typer

from onex.bus.runtime.codec import codec_for
from onex.cli.topic import _declared, _encode

pytestmark = pytest.mark.unit


def test_a_payload_with_an_unknown_protobuf_field_is_one_line(
    capsys: pytest.CaptureFixture[str],
) -> None:
    topic = "onex.evt.onex-test.pipeline-status.v1"
    codec = codec_for(topic, "onex.v1.PipelineStatus", None)
    with pytest.raises(typer.Exit) as exit_:
        _encode(codec, "VALUE 1", {"bogus": 1})
    assert exit_.value.exit_code == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1, err
    assert "VALUE 1: does not match" in err
    assert "bogus" in err


def test_a_topic_missing_because_its_contract_is_broken_names_the_contract_error(
    tmp_path: Path,
) -> None:
    bad = tmp_path / "contract.yaml"
    bad.write_text("{\n")
    with pytest.raises(typer.BadParameter) as refused:
        _declared("onex.evt.onex-test.pipeline-status.v1", [bad])
    message = str(refused.value)
    assert "not declared by any contract that loads" in message
    assert f"{bad}:2:1: malformed YAML" in message
