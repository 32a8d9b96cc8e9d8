"""Totalmobile scheduler adaptor (REST + OAuth2 client credentials)."""

from adaptors.totalmobile.adaptor import TotalmobileAdaptor
from adaptors.totalmobile.config import TotalmobileConfig, WorkType

__all__ = ["TotalmobileAdaptor", "TotalmobileConfig", "WorkType"]
