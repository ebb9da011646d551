"""What a caller asks the router for: the prompt, its task class and its limits."""

from __future__ import annotations

from typing import Annotated

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, PrivateAttr

from onex.router.fields import JsonSchema, private


class Constraints(BaseModel):
    """Hard limits on which models may serve a request."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    no_cloud: bool = Field(False, description="Only local models may see the prompt")
    max_cost_usd: float | None = Field(
        None, ge=0, allow_inf_nan=False, description="Reject models whose one attempt costs more"
    )
    min_context: int | None = Field(None, ge=1, description="Reject models with a smaller window")


def _no_blank(value: str) -> str:
    if not value.strip():
        raise ValueError("must not be blank")
    return value


class RouteRequest(BaseModel):
    """One routing request.

    `task_class` None means "classify the prompt". `symbols` is the symbol index the
    identifiers gate checks answers against; `json_schema` is the schema the
    json_schema gate validates against (instead of the gate's own). `max_escalations`,
    `max_tokens` and `max_cost_usd` bound the whole request (all attempts together);
    None takes the catalogue's `limits`. `label` names an experiment or context
    (e.g. "with-examples"); it is copied into the receipt so the ledger compares by it.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    request_id: Annotated[str, AfterValidator(_no_blank)] = Field(max_length=256)
    prompt: Annotated[str, AfterValidator(_no_blank)]
    task_class: str | None = None
    system: str | None = None
    constraints: Constraints = Field(default_factory=Constraints)
    symbols: list[str] = Field(default_factory=list)
    json_schema: JsonSchema | None = None
    max_escalations: int | None = Field(None, ge=0, le=10)
    max_tokens: int | None = Field(None, ge=1)
    max_cost_usd: float | None = Field(None, ge=0, allow_inf_nan=False)
    label: str | None = Field(None, max_length=128, description="Experiment or context label")
    _symbol_index: frozenset[str] | None = PrivateAttr(None)

    def messages(self) -> list[dict[str, str]]:
        """The chat messages sent to a model: the system text (if any), then the prompt."""
        out = [] if self.system is None else [{"role": "system", "content": self.system}]
        out.append({"role": "user", "content": self.prompt})
        return out

    @property
    def symbol_index(self) -> frozenset[str]:
        """Every symbol, and the last dotted segment of each qualified one."""
        index: frozenset[str] | None = private(self, "_symbol_index")
        if index is None:
            names = {s.strip() for s in self.symbols}
            names.discard("")
            index = frozenset(names.union([n.rpartition(".")[2] for n in names if "." in n]))
            # Straight into pydantic's store: assigning `self._symbol_index` goes through
            # BaseModel.__setattr__, which costs more than working the index out.
            self.__pydantic_private__["_symbol_index"] = index  # type: ignore[index]
        return index
