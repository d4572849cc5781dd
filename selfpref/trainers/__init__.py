"""Thin entrypoints over TRL for DPO, IPO, SimPO, SSO, SELFEE and reward models."""
