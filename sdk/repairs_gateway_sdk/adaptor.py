"""The adaptor plugin seam.

An adaptor is a class registered in the ``repairs_gateway.adaptors`` entry-point group. It
declares a pydantic ``Config`` (secrets as ``SecretStr``) and implements one or more
capabilities by inheriting from the abstract bases below:

- ``AddressSource``: the properties at a postcode, one property, operative notes.
- ``Scheduler``: availability, book, reschedule, cancel, status.
- ``WorksOrderSink``: raise and cancel a works order in a housing management system.

Adaptors speak only the common model (``repairs_gateway_sdk.model``) and raise only the error
taxonomy (``repairs_gateway_sdk.errors``). Every network call must have a timeout; only reads may be
retried. A booking call receives the gateway reference, which the adaptor uses as the vendor's
order key so that a retried booking can be found instead of created twice.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, ClassVar

from pydantic import BaseModel, ConfigDict

from repairs_gateway_sdk.model import (
    AvailabilityQuery,
    BookingConfirmation,
    BookingHandle,
    BookingOrder,
    Property,
    SchedulerStatus,
    SlotPage,
    VendorSlot,
    WorksOrder,
)

if TYPE_CHECKING:
    from repairs_gateway_sdk.store import Store


# The entry-point group the gateway (and the contract kit) find adaptor classes in; the entry
# point's name is the adaptor's ``type_name``, the type councils write in their YAML.
ENTRY_POINT_GROUP = "repairs_gateway.adaptors"

# What ``check_health`` may look up to touch a backend cheaply: a reference no booking has.
HEALTH_PROBE_REFERENCE = "RGW-HEALTH-PROBE"


class AdaptorConfig(BaseModel):
    """Base for adaptor options: unknown keys are an error, so typos are caught by ``check``."""

    model_config = ConfigDict(extra="forbid")


@dataclass
class AdaptorContext:
    council: str
    name: str
    config_dir: Path
    data_dir: Path
    # the adaptor's namespaced store, for adaptors that keep state (see repairs_gateway_sdk.store)
    store: Store | None = None

    def resolve(self, path: str | Path) -> Path:
        """Resolve a path option relative to the council's configuration directory."""
        p = Path(path)
        return p if p.is_absolute() else (self.config_dir / p).resolve()


class Adaptor(ABC):  # noqa: B024 - capabilities add the abstract methods
    type_name: ClassVar[str]
    Config: ClassVar[type[AdaptorConfig]]
    # Adaptors that keep state name the prefix of their tables; they are then given a store
    # (``context.store``, see repairs_gateway_sdk.store). Stateless adaptors leave it None.
    store_namespace: ClassVar[str | None] = None

    def __init__(self, config: AdaptorConfig, context: AdaptorContext) -> None:
        self.config = config
        self.context = context

    @property
    def name(self) -> str:
        return self.context.name

    async def start(self) -> None:  # noqa: B027 - optional hook
        """Open connections, load files. Called once before the first request."""

    async def prepare(self) -> None:  # noqa: B027 - optional hook
        """Make ready, before ``start``, what this adaptor shares with other councils' (a
        parsed WSDL, a mapping file): no connection, session or backend call of its own. A
        host may call it in the background while the adaptor is not yet started (the gateway
        does, at low priority, when it starts adaptors lazily); a failure here is left for
        ``start`` to report."""

    async def close(self) -> None:  # noqa: B027 - optional hook
        """Release connections and sessions. Called on shutdown."""

    async def check_health(self) -> None:  # noqa: B027 - optional hook
        """Raise a ``GatewayError`` if the backend cannot be reached."""


class AddressSource(Adaptor):
    @abstractmethod
    async def addresses(self, postcode: str) -> list[Property]:
        """Properties at a normalised postcode (``LN1 1AA``), eligible or not."""

    @abstractmethod
    async def get_property(self, property_id: str) -> Property | None:
        """One property by id, or None."""

    async def operative_notes(self, property_id: str) -> list[str]:
        """Codes an operative must know before attending (alerts, asbestos). Never shown to
        residents or logged."""
        return []


class Scheduler(Adaptor):
    @abstractmethod
    async def availability(self, query: AvailabilityQuery) -> SlotPage:
        """Slots from ``query.start_from`` in time order; ``resume`` continues a page."""

    @abstractmethod
    async def book(self, order: BookingOrder) -> BookingConfirmation:
        """Book ``order.slot``. Must be safe to call again with the same reference."""

    @abstractmethod
    async def reschedule(self, handle: BookingHandle, slot: VendorSlot) -> BookingConfirmation:
        """Move a booking to another slot."""

    @abstractmethod
    async def cancel(self, handle: BookingHandle, reason: str) -> None:
        """Cancel; cancelling something already cancelled or never created is not an error."""

    @abstractmethod
    async def status(self, handle: BookingHandle) -> SchedulerStatus:
        """The booking's current status as the scheduler sees it."""


class WorksOrderSink(Adaptor):
    @abstractmethod
    async def raise_works_order(self, order: WorksOrder) -> str:
        """Raise the order; returns the vendor's order reference. Must be idempotent by
        ``order.reference``."""

    @abstractmethod
    async def cancel_works_order(self, vendor_ref: str) -> None:
        """Cancel a works order raised earlier."""


class Attachment(BaseModel):
    """A file a resident sent with a repair (a photo): bytes and their checked type."""

    reference: str  # the gateway's repair reference
    content_type: str  # image/jpeg | image/png
    filename: str
    data: bytes


class AttachmentSink(Adaptor):
    """Optional capability of a works-order sink: attach files to a works order it raised.
    The gateway calls it from the outbox once the works order exists; must be safe to call
    again with the same attachment."""

    @abstractmethod
    async def attach(self, works_order_ref: str, attachment: Attachment) -> None:
        """Attach ``attachment`` to the works order ``works_order_ref``."""


@dataclass(frozen=True)
class Capability:
    """One capability of the seam: the base an adaptor inherits to offer it, and the methods
    the gateway calls for it (each guarded by that capability's breaker, deadline and
    statistics)."""

    name: str
    base: type[Adaptor]
    methods: tuple[str, ...]
    routable: bool = True  # chosen by a council's ``routes:`` (else it follows another's adaptor)


# The one table of capabilities: read by configuration checks, routing, the guard and the kit.
CAPABILITIES: dict[str, Capability] = {
    c.name: c
    for c in (
        Capability("addresses", AddressSource, ("addresses", "get_property", "operative_notes")),
        Capability("appointments", Scheduler, ("availability",)),
        Capability("bookings", Scheduler, ("book", "reschedule", "cancel", "status")),
        Capability("works_orders", WorksOrderSink, ("raise_works_order", "cancel_works_order")),
        Capability("attachments", AttachmentSink, ("attach",), routable=False),
    )
}
ROUTABLE = tuple(name for name, c in CAPABILITIES.items() if c.routable)
METHOD_CAPABILITY: dict[str, str] = {m: c.name for c in CAPABILITIES.values() for m in c.methods}


def unguarded_methods(cls: type) -> list[str]:
    """Capability methods of ``cls`` (abstract in a capability base) that the table does not
    list: the guard would not know them, so loading such an adaptor is refused."""
    declared: set[str] = set()
    for klass in cls.__mro__:  # abstract anywhere above: the seam's and any sub-seam's
        if isinstance(klass, type) and issubclass(klass, Adaptor):
            declared.update(getattr(klass, "__abstractmethods__", ()))
    return sorted(name for name in declared if name not in METHOD_CAPABILITY)


def capabilities_of(adaptor: object) -> list[str]:
    """The capabilities an adaptor (class or instance) offers, in table order."""
    cls = adaptor if isinstance(adaptor, type) else type(adaptor)
    return [name for name, c in CAPABILITIES.items() if issubclass(cls, c.base)]
