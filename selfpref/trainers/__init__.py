"""Thin entrypoints over TRL for DPO, IPO, SimPO, ORPO, SSO, SELFEE and reward models."""
