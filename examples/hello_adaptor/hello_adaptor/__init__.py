"""Example out-of-tree adaptor: serves the properties listed in its own options."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field, SecretStr

from repairs_gateway_sdk.adaptor import AdaptorConfig, AddressSource
from repairs_gateway_sdk.model import Property
from repairs_gateway_sdk.postcodes import normalise_postcode


class HelloProperty(BaseModel):
    model_config = ConfigDict(extra="forbid")

    id: str
    address: list[str] = Field(min_length=1)
    postcode: str


class HelloConfig(AdaptorConfig):
    properties: list[HelloProperty] = Field(default_factory=list)
    greeting: str = Field(default="hello", description="shown in the first address line")
    api_key: SecretStr | None = Field(default=None, description="unused; shows a secret option")


class HelloAdaptor(AddressSource):
    type_name = "hello"
    Config = HelloConfig

    def _all(self) -> list[Property]:
        cfg = self.config
        assert isinstance(cfg, HelloConfig)
        out = []
        for p in cfg.properties:
            postcode = normalise_postcode(p.postcode)
            if postcode is None:
                continue
            lines = [f"{cfg.greeting}: {p.address[0]}", *p.address[1:]]
            out.append(Property(id=p.id, address_lines=lines, postcode=postcode))
        return out

    async def addresses(self, postcode: str) -> list[Property]:
        return [p for p in self._all() if p.postcode == postcode]

    async def get_property(self, property_id: str) -> Property | None:
        return next((p for p in self._all() if p.id == property_id), None)


__all__ = ["HelloAdaptor", "HelloConfig"]
