"""The repairs gateway's adaptor SDK: everything an adaptor plugin builds against, and nothing
of the gateway itself. See sdk/README.md and docs/decisions/0012-sdk-boundary.md.

Public modules (the contract; their ``__all__`` or documented names):
- ``repairs_gateway_sdk.adaptor``: the capability interfaces (``Adaptor``, ``AddressSource``,
  ``Scheduler``, ``WorksOrderSink``, ``AttachmentSink``), ``AdaptorConfig``, ``AdaptorContext``
  and the one table of capabilities (``CAPABILITIES``).
- ``repairs_gateway_sdk.model``: the data crossing the seam (property, job, slot, booking,
  works order, statuses).
- ``repairs_gateway_sdk.errors``: the error taxonomy adaptors raise.
- ``repairs_gateway_sdk.timeutil``, ``.slots``, ``.postcodes``, ``.references``: the shared
  vocabulary (London time, slot labels, UK postcodes, repair references).
- ``repairs_gateway_sdk.store``: the namespaced store for adaptors that keep state.
"""

from repairs_gateway_sdk.adaptor import (
    CAPABILITIES,
    Adaptor,
    AdaptorConfig,
    AdaptorContext,
    AddressSource,
    Attachment,
    AttachmentSink,
    Capability,
    Scheduler,
    WorksOrderSink,
)
from repairs_gateway_sdk.errors import (
    BackendAuthFailed,
    BackendCannotAccept,
    BackendRejected,
    BackendUnavailable,
    GatewayError,
    InvalidInput,
    NotFound,
    SlotUnavailable,
)

__version__ = "1.1.0"

__all__ = [
    "CAPABILITIES",
    "Adaptor",
    "AdaptorConfig",
    "AdaptorContext",
    "AddressSource",
    "Attachment",
    "AttachmentSink",
    "BackendAuthFailed",
    "BackendCannotAccept",
    "BackendRejected",
    "BackendUnavailable",
    "Capability",
    "GatewayError",
    "InvalidInput",
    "NotFound",
    "Scheduler",
    "SlotUnavailable",
    "WorksOrderSink",
    "__version__",
]
