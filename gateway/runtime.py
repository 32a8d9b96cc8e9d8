"""The running gateway: settings, database, councils and their adaptors, services, outbox
worker and key store, started and stopped together (FastAPI lifespan or CLI)."""

from __future__ import annotations

import asyncio

import structlog

from gateway import tracing
from gateway.auth import KeyStore, Principal
from gateway.booking import Bookings
from gateway.config import ConfigError
from gateway.councils import Council, load_councils
from gateway.lifecycle import AdaptorStarter
from gateway.metrics import OutboxMonitor
from gateway.outbox import OutboxWorker
from gateway.probes import Prober
from gateway.reload import Reloader, ReloadResult
from gateway.report import flush_stats
from gateway.resilience import CallStats
from gateway.service import Gateway
from gateway.settings import Settings
from gateway.storage.database import Database
from gateway.tokens import TokenCodec

log = structlog.get_logger("gateway.runtime")
STATS_FLUSH_SECONDS = 10.0
ANONYMOUS = Principal("anonymous", "anonymous", frozenset({"*"}), "admin", 10**9)


class Runtime:
    def __init__(
        self,
        settings: Settings,
        *,
        run_worker: bool = True,
        migrate: bool = True,
        periodic_flush: bool | None = None,
    ) -> None:
        self.settings = settings
        unsafe = settings.unsafe_setting_problem()
        if unsafe is not None:
            raise ValueError(unsafe)
        self.run_worker = run_worker
        self.migrate_on_start = migrate  # False: `repairs-gateway migrate` does it
        # every process calling adaptors records call stats to flush (default: with the worker)
        self.periodic_flush = run_worker if periodic_flush is None else periodic_flush
        self.database = Database(settings.resolved_database_url())
        if tracing.configure(settings):  # off unless an OTLP endpoint is set
            tracing.instrument_engine(self.database.engine)
        councils, problems = load_councils(settings.config_dir, settings.data_dir, self.database)
        fatal = [p for p in problems if p.fatal]
        for p in problems:
            if not p.fatal:
                log.warning("config.problem", problem=str(p))
        if fatal:
            raise ConfigError(fatal)
        self.councils: dict[str, Council] = councils
        self.codec = TokenCodec(
            settings.resolved_secret_key(),
            settings.previous_secret_keys(),
            lifetime_seconds=settings.token_lifetime_seconds,
        )
        self.gateway = Gateway(councils, self.database, self.codec)
        self.worker = OutboxWorker(
            self.database,
            max_attempts=settings.outbox_max_attempts,
            poll_seconds=settings.outbox_poll_seconds,
        )
        self.bookings = Bookings(self.gateway, self.worker, settings.reconcile_after_seconds)
        self.keys = KeyStore(self.database)
        self.stats = CallStats()
        for council in councils.values():
            council.stats = self.stats
            council.breaker_threshold = settings.breaker_threshold
            council.breaker_cooldown = settings.breaker_cooldown_seconds
        self._flusher: asyncio.Task[None] | None = None
        self.starter = AdaptorStarter(
            councils.values(), timeout=settings.adaptor_start_timeout_seconds
        )
        # backends probed in the background; the outbox's figures read from the database
        self.prober = Prober(
            councils.values(),
            interval=settings.probe_interval_seconds,
            timeout=settings.probe_timeout_seconds,
            concurrency=settings.probe_concurrency,
        )
        self.outbox_monitor = OutboxMonitor(self.database)
        # SIGHUP / POST /v1/admin/reload: council files again, without a restart
        self.reloader = Reloader(self)

    async def start(self) -> None:
        if self.migrate_on_start:
            await asyncio.to_thread(self.database.migrate)
        await self.starter.start(
            self.settings.adaptor_start_grace_seconds, lazy=self.settings.lazy_start(self.councils)
        )
        self.prober.start()
        self.outbox_monitor.start()
        if self.run_worker:
            self.worker.start()
        if self.periodic_flush:
            self._flusher = asyncio.create_task(self._flush_loop())
        self.reloader.start()

    async def reload(self, via: str = "admin") -> ReloadResult:
        """Read the council files again and swap in what changed (gateway/reload.py)."""
        return await self.reloader.reload(via=via)

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(STATS_FLUSH_SECONDS)
            await self.flush_stats()

    async def flush_stats(self) -> None:
        try:
            await flush_stats(self.database, self.stats)
            await self.keys.flush_last_used()
        except Exception as exc:  # noqa: BLE001 - statistics must never break serving
            log.warning("stats.flush_failed", error_type=type(exc).__name__)

    async def stop(self) -> None:
        await self.reloader.stop()
        await self.starter.stop()
        await self.prober.stop()
        await self.outbox_monitor.stop()
        if self._flusher is not None:
            self._flusher.cancel()
        await self.worker.stop()
        await self.gateway.shadow.drain()
        await self.flush_stats()
        for council in self.councils.values():
            for adaptor in council.adaptors.values():
                try:
                    await adaptor.close()
                except Exception:  # noqa: BLE001 - shutting down; keep closing the others
                    log.warning("adaptor.close_failed", council=council.id, adaptor=adaptor.name)
        await self.database.dispose()
        tracing.shutdown()

    async def authenticate(self, presented: str | None) -> Principal:
        if not self.settings.require_api_keys:
            return ANONYMOUS
        return await self.keys.authenticate(presented)
