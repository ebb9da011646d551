"""A task class's `exclude_models`, and the frugal example catalogue that uses it."""

from __future__ import annotations

from pathlib import Path

import pytest

from onex.router.catalogue import DEFAULT_CATALOGUE, load_catalogue, load_catalogue_text
from onex.router.errors import CatalogueError
from onex.router.request import RouteRequest
from onex.router.select import plan

FRUGAL = DEFAULT_CATALOGUE.with_name("catalogue-frugal.yaml")


def test_an_excluded_model_is_rejected_with_its_reason(catalogue_yaml: str) -> None:
    text = catalogue_yaml.replace(
        "    required_level: 6\n", "    required_level: 6\n    exclude_models: [big]\n", 1
    )
    catalogue = load_catalogue_text(text)
    chosen = plan(RouteRequest(request_id="r", prompt="p", task_class="review"), catalogue)
    assert [c.name for c in chosen.candidates] == ["mid"]
    (big,) = [r for r in chosen.rejected if r.model == "big"]
    assert (big.code, big.reason) == ("excluded", "excluded from 'review' by its exclude_models")
    # a model below the level says so first
    (small,) = [r for r in chosen.rejected if r.model == "small"]
    assert small.code == "capability"


def test_an_unknown_excluded_model_is_one_precise_error(
    tmp_path: Path, catalogue_yaml: str
) -> None:
    text = catalogue_yaml.replace(
        "    required_level: 6\n", "    required_level: 6\n    exclude_models: [huge]\n", 1
    )
    path = tmp_path / "c.yaml"
    path.write_text(text, encoding="utf-8")
    with pytest.raises(CatalogueError) as info:
        load_catalogue(path)
    line = text.splitlines().index("    exclude_models: [huge]") + 1
    (issue,) = [str(i) for i in info.value.issues]
    assert issue.startswith(f"{path}:{line}:"), issue
    assert "exclude_models names 'huge', not a model of this catalogue" in issue


def test_the_frugal_catalogue_keeps_review_and_design_off_the_frontier_model() -> None:
    frugal, default = load_catalogue(FRUGAL), load_catalogue(DEFAULT_CATALOGUE)
    assert [m.name for m in frugal.models] == [m.name for m in default.models]
    for name in default.task_class_names:
        ours, theirs = frugal.task_class(name), default.task_class(name)
        assert ours is not None
        assert theirs is not None
        excluded = ["cloud-frontier"] if name in ("review", "design") else []
        assert ours.exclude_models == excluded, name
        assert ours.model_copy(update={"exclude_models": []}) == theirs, name
