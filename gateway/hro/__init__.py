"""The Housing Repairs Online (HRO) facade: the two public HRO resident front ends
(madetech "Redbridge" and Newark & Sherwood) served unmodified at ``/hro/{council}``, as a
thin layer over the standard booking flow. See README ("Moving from Housing Repairs
Online") and /work/shared/hro-contract.md for the contract they need.

Kept import-light: ``gateway.config`` imports ``gateway.hro.config``.
"""
