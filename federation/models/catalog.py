"""Wire models of a node's catalog of offerings (PROTOCOL.md section 5)."""

from __future__ import annotations

from collections import Counter
from typing import Annotated, Literal

from pydantic import Field, JsonValue, StringConstraints, model_validator

from federation.encoding import UtcTime
from federation.limits import MAX_OFFERINGS, MAX_PLANS
from federation.models.base import Identifier, NodeName, Token, WireModel

Amount = Annotated[str, StringConstraints(pattern=r"^(0|[1-9][0-9]{0,11})(\.[0-9]{1,4})?$")]
"""A decimal amount as a string (``"12.50"``), so that no float rounding enters a signature."""
JsonSchema = dict[str, JsonValue]
_EMPTY_OBJECT_SCHEMA: JsonSchema = {"type": "object"}


class Price(WireModel):
    """What a plan costs: an amount of a currency per unit of time."""

    amount: Amount
    currency: Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
    unit: Literal["hour", "day", "month", "year", "once"]

    @property
    def is_free(self) -> bool:
        """Whether the amount is zero."""
        return float(self.amount) == 0


class Plan(WireModel):
    """One way to have an offering: its parameters' JSON Schema, price, capacity, region."""

    id: Identifier
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=2000)] = ""
    parameters: JsonSchema = Field(default_factory=lambda: _EMPTY_OBJECT_SCHEMA.copy())
    price: Price | None = None
    capacity: Annotated[int, Field(ge=0)] | None = None
    region: Token | None = None
    plan_updateable: bool | None = None
    """True: an instance of this plan may move to another plan of the offering (OSB)."""

    @property
    def is_free(self) -> bool:
        """No price, or a zero price."""
        return self.price is None or self.price.is_free


class Offering(WireModel):
    """A service a node offers its peers: a kind of service with one or more plans."""

    id: Identifier
    name: Annotated[str, StringConstraints(min_length=1, max_length=200)]
    description: Annotated[str, StringConstraints(max_length=4000)] = ""
    kind: Token
    module: Annotated[str, StringConstraints(max_length=200)] | None = None
    tags: tuple[Token, ...] = ()
    bindable: bool = True
    plans: Annotated[tuple[Plan, ...], Field(min_length=1, max_length=MAX_PLANS)]


class Catalog(WireModel):
    """A node's catalog: who publishes it, its version, when it was made, its offerings.

    ``version`` grows by one each time the offerings change; peers refuse an older one.
    """

    format: Literal["infracms.catalog.v1"] = "infracms.catalog.v1"
    node: NodeName
    version: Annotated[int, Field(ge=1, le=2**53 - 1)]
    generated_at: UtcTime
    offerings: Annotated[tuple[Offering, ...], Field(max_length=MAX_OFFERINGS)] = ()

    @model_validator(mode="after")
    def _unique_ids(self) -> Catalog:
        offering_ids = [offering.id for offering in self.offerings]
        plan_ids = [plan.id for offering in self.offerings for plan in offering.plans]
        for what, ids in (("offering", offering_ids), ("plan", plan_ids)):
            repeated = sorted(i for i, n in Counter(ids).items() if n > 1)
            if repeated:
                raise ValueError(f"{what} ids must be unique in a catalog, repeated: {repeated}")
        return self

    def find_plan(self, plan_id: str) -> tuple[Offering, Plan] | None:
        """The offering and plan with this plan id, or None."""
        for offering in self.offerings:
            for plan in offering.plans:
                if plan.id == plan_id:
                    return offering, plan
        return None
