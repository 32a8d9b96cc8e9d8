"""Kirona DRS (Dynamic Resource Scheduler) adaptor: appointments and bookings over SOAP."""

from adaptors.kirona_drs.adaptor import KironaDRSAdaptor
from adaptors.kirona_drs.config import KironaDRSConfig

__all__ = ["KironaDRSAdaptor", "KironaDRSConfig"]
