"""Sandbox councils and test keys.

A council is a *sandbox* when every adaptor it defines is the sandbox adaptor
(adaptors/sandbox: fixed data, no network, no files) and it sends no notifications. A key
with role ``test`` acts only for sandbox councils (``Principal.check_council``), so whatever a
front end does with it, no council's system and no resident is ever reached. An adaptor that
failed to load does not count as a sandbox one: a council with one is not a sandbox.

``repairs-gateway demo`` (``make run``) serves the ``sandbox`` council beside ``demo`` with a
local test key, ``SANDBOX_KEY``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from gateway.councils import Council
    from gateway.settings import Settings

# The gateway imports no adaptor (it finds them by entry point): the in-tree sandbox class is
# recognised by its type name and the module it is defined in.
SANDBOX_TYPE = "sandbox"
SANDBOX_MODULE = "adaptors.sandbox."
SANDBOX_KEY_ID = "sandbox"
SANDBOX_KEY = f"rgw_{SANDBOX_KEY_ID}_local-sandbox-key"  # the demo's only; acts for sandboxes


def is_sandbox(council: Council | None) -> bool:
    if council is None:
        return False
    config = council.config
    if config.notifications is not None or not config.adaptors:
        return False
    return all(_is_sandbox_adaptor(council.adaptors.get(name)) for name in config.adaptors)


def _is_sandbox_adaptor(adaptor: Any) -> bool:
    cls = type(adaptor)
    return getattr(cls, "type_name", None) == SANDBOX_TYPE and cls.__module__.startswith(
        SANDBOX_MODULE
    )


async def ensure_sandbox_key(settings: Settings, councils: list[str]) -> None:
    """The demo's test key for ``councils`` (its own SQLite database only)."""
    from gateway.auth import KeyStore
    from gateway.storage.database import Database

    db = Database(settings.resolved_database_url())
    try:
        store = KeyStore(db)
        existing = {k.key_id: k for k in await store.list()}
        key = existing.get(SANDBOX_KEY_ID)
        if key is not None and sorted(key.councils) != sorted(councils):
            await store.revoke(SANDBOX_KEY_ID)
            await store.purge(SANDBOX_KEY_ID)
            key = None
        if key is None:
            await store.create(
                "sandbox", councils, "test", key_id=SANDBOX_KEY_ID, secret="local-sandbox-key"
            )
    finally:
        await db.dispose()
