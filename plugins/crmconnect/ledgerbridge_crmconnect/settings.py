"""Per-account settings of the crmconnect plugin (validated by the admin API; every field defaulted)."""

from __future__ import annotations

from typing import Annotated

import msgspec
from ledgerbridge.web.outbound import UnsafeUrl, check_url

HIGHLEVEL_API_URL = "https://services.leadconnectorhq.com"


class CrmConnectSettings(msgspec.Struct, kw_only=True, forbid_unknown_fields=True):
    #: The HighLevel sub-account (location) this ledgerbridge account is connected to.
    location_id: str = ""
    #: Empty: HighLevel's API, or the mounted sandbox while no real credentials are configured.
    api_base_url: str = ""
    #: The API at `api_base_url` is a ledgerbridge CRM sandbox (webhook keys come from its control API).
    sandbox: bool = False
    #: PEM public keys checking `x-wh-signature` (RSA) and `x-ghl-signature` (Ed25519); empty: the defaults.
    webhook_rsa_public_key: str = ""
    webhook_ed25519_public_key: str = ""
    #: Accept webhooks whose `timestamp` is at most this far from now (seconds).
    webhook_max_age_seconds: float = 300.0
    #: Reconciliation poller: how often, and how far back before the checkpoint it looks again.
    poll_interval_seconds: Annotated[
        float,
        msgspec.Meta(
            ge=0,
            le=86_400,
            title="Check for missed payments every (seconds)",
            description="Webhooks report payments at once; this check finds any a webhook missed. 300 is five minutes.",
        ),
    ] = 300.0
    poll_overlap_seconds: float = 600.0
    #: Refunds change old transactions: re-read this many days of them at most once per `refund_sweep_hours`.
    refund_lookback_days: int = 30
    refund_sweep_hours: float = 6.0

    def __post_init__(self) -> None:
        if self.api_base_url:  # https to a public address; http only to this machine, for a sandbox
            try:
                check_url(self.api_base_url, allow_loopback=self.sandbox)
            except UnsafeUrl as exc:
                raise ValueError(f"api_base_url is not allowed: {exc}") from None
