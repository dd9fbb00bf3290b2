"""The client's limiter against the CRM sandbox's fixed windows: as fast as the location allows, never refused."""

from __future__ import annotations

import asyncio
from typing import Any

from ledgerbridge.testing import free_port, running_server
from ledgerbridge_crmconnect.client import CrmClient, StaticToken
from ledgerbridge_crmconnect.sandbox import LocationSeed, SandboxConfig, create_app
from ledgerbridge_crmconnect.wire import contact_response

LOCATION, TOKEN = "limitLocation000001", "pit-limit-token"


async def test_many_requests_at_once_all_pass_without_one_refusal() -> None:
    port = free_port()
    app = create_app(SandboxConfig(
        base_url=f"http://127.0.0.1:{port}", locations=[LocationSeed(id=LOCATION, name="Limits", token=TOKEN)],
        rate_limit_requests=100, rate_limit_interval_seconds=10.0, time_scale=10.0,  # a 1 s window
    ))  # fmt: skip
    verdicts: list[bool] = []
    admit = app.state.sandbox.limiter.hit

    def hit(client: str, location_id: str) -> Any:
        verdict = admit(client, location_id)
        verdicts.append(verdict.allowed)
        return verdict

    app.state.sandbox.limiter.hit = hit
    async with running_server(app, port=port) as url, CrmClient(url, StaticToken(TOKEN), max_retries=0) as client:

        async def search(n: int) -> None:
            params = {"locationId": LOCATION, "email": f"nobody{n}@example.com"}
            await client.get("/contacts/search/duplicate", contact_response, params=params)

        await asyncio.gather(*(search(n) for n in range(250)))  # 2.5 windows' worth at once, 20 in flight

    assert len(verdicts) == 250 and all(verdicts)  # no 429: no window held more than 100
