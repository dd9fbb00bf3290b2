"""The in-memory sandbox: companies, apps, tokens, throttles, faults, change log, webhooks, persistence."""

from __future__ import annotations

import json
import os
import tempfile
from dataclasses import asdict
from datetime import timedelta
from typing import Any

from . import errors
from .clock import Clock, iso, iso_ms, parse_time
from .config import AppRegistration, SandboxConfig
from .entities import ENTITIES, Books
from .limits import Faults, Limits, Throttle
from .state import Change, Company, StoredReply, company_from_json, company_to_json, seed_company
from .tokens import TokenStore
from .webhooks import Dispatcher

CDC_DAYS = 30
CDC_MAX = 1000
CDC_UNSUPPORTED = ("TaxCode", "TaxRate")
SEED_COMPANY = ("Sandbox Company_US_1", "US")


class Sandbox:
    """The engine behind the HTTP layer; tests may call it directly through `app.state.sandbox`."""

    def __init__(self, config: SandboxConfig, clock: Clock | None = None) -> None:
        self.config = config
        self.clock = clock or Clock()
        self.companies: dict[str, Company] = {}
        self.apps: dict[str, AppRegistration] = {app.client_id: app for app in config.apps}
        self.tokens = TokenStore()
        self.limits = Limits(config.requests_per_minute, config.max_in_flight, config.batches_per_minute)
        self.throttle = Throttle(self.limits, self.clock, config.time_scale)
        self.faults = Faults()
        self.connections: set[tuple[str, str]] = set()
        self.dispatcher = Dispatcher(self.clock, config.time_scale, lambda: self.apps, lambda: self.base_url)
        self.dirty = False
        self._realm_seq = 0
        if config.state_file and os.path.exists(config.state_file):
            self.load(config.state_file)
        elif config.seed:
            self.create_company(*SEED_COMPANY)

    @property
    def base_url(self) -> str:
        return self.config.base_url.rstrip("/")

    @base_url.setter
    def base_url(self, value: str) -> None:
        self.config.base_url = value.rstrip("/")

    # -- companies and apps ------------------------------------------------------------------------------
    def create_company(self, name: str, country: str = "US") -> Company:
        self._realm_seq += 1
        realm_id = f"9341452{self._realm_seq:09d}"
        while realm_id in self.companies:
            self._realm_seq += 1
            realm_id = f"9341452{self._realm_seq:09d}"
        company = seed_company(
            realm_id, name.strip() or "Sandbox Company", country.strip() or "US", iso(self.clock.now())
        )
        self.companies[realm_id] = company
        self.dirty = True
        return company

    def company(self, realm_id: str) -> Company:
        company = self.companies.get(realm_id)
        if company is None:
            raise errors.not_found("Company", realm_id)
        return company

    def register_app(self, app: AppRegistration) -> None:
        self.apps[app.client_id] = app
        self.dirty = True

    def books(self, realm_id: str) -> Books:
        return Books(self.company(realm_id), self.clock, self.notify)

    def connect(self, client_id: str, realm_id: str) -> None:
        self.connections.add((client_id, realm_id))
        self.dirty = True

    def issue_tokens(self, client_id: str, realm_id: str, email: str = "user@example.com") -> dict[str, Any]:
        """Skip the browser: grant `client_id` access to `realm_id` and return Intuit's token response."""
        if client_id not in self.apps:
            raise KeyError(client_id)
        self.company(realm_id)
        grant = self.tokens.new_grant(self.clock, client_id, realm_id, email, "com.intuit.quickbooks.accounting")
        self.connect(client_id, realm_id)
        return {**self.tokens.issue(self.clock, grant, self.config.access_token_ttl), "realmId": realm_id}

    # -- changes -----------------------------------------------------------------------------------------
    def notify(self, company: Company, entity: str, entity_id: str, operation: str) -> None:
        now = self.clock.now()
        change = Change(iso(now), now.timestamp(), entity, entity_id, operation)
        company.changes.append(change)
        horizon = (now - timedelta(days=CDC_DAYS + 1)).timestamp()
        if company.changes and company.changes[0].epoch < horizon:
            company.changes = [c for c in company.changes if c.epoch >= horizon]
        for client_id, realm_id in sorted(self.connections):
            if realm_id == company.realm_id and client_id in self.apps and self.apps[client_id].webhook_url:
                self.dispatcher.enqueue(client_id, realm_id, change)
        self.dirty = True

    def advance_clock(self, seconds: float) -> None:
        self.clock.advance(seconds)
        self.dispatcher.wake()

    # -- change data capture -----------------------------------------------------------------------------
    def cdc(self, realm_id: str, entities: str | None, changed_since: str | None) -> dict[str, Any]:
        company = self.company(realm_id)
        if not entities:
            raise errors.required("entities")
        if not changed_since:
            raise errors.required("changedSince")
        since = parse_time(changed_since)
        if since is None:
            raise errors.validation(f"changedSince {changed_since!r} is not a valid date-time", "changedSince")
        if since < self.clock.now() - timedelta(days=CDC_DAYS):
            raise errors.validation("changedSince cannot be more than 30 days in the past", "changedSince")
        names: list[str] = []
        lookup = {name.lower(): name for name in ENTITIES}
        for raw in entities.split(","):
            name = lookup.get(raw.strip().lower())
            if name is None or name in CDC_UNSUPPORTED:
                raise errors.validation(f"Entity {raw.strip()!r} is not supported by ChangeDataCapture", "entities")
            if name not in names:
                names.append(name)
        budget = CDC_MAX
        responses: list[dict[str, Any]] = []
        for name in names:
            rows = [*company.table(name).values(), *company.tombstones.get(name, {}).values()]
            changed = []
            for row in rows:
                moment = parse_time(row.get("MetaData", {}).get("LastUpdatedTime", ""))
                if moment is not None and moment >= since:
                    changed.append((moment, row))
            changed.sort(key=lambda pair: pair[0])
            picked = [row for _, row in changed[:budget]]
            budget -= len(picked)
            if picked:
                responses.append({name: picked, "startPosition": 1, "maxResults": len(picked)})
            else:
                responses.append({})
        return {"CDCResponse": [{"QueryResponse": responses}], "time": iso_ms(self.clock.now())}

    # -- requestid replies -------------------------------------------------------------------------------
    def reply_for(self, realm_id: str, request_id: str) -> StoredReply | None:
        """The stored reply of an earlier write with this requestid, unless Intuit's window has passed."""
        reply = self.company(realm_id).replies.get(request_id)
        if reply is None or self.clock.time() - reply.stored_at >= self.config.requestid_ttl_seconds:
            return None
        return reply

    def purge_replies(self) -> None:
        horizon = self.clock.time() - self.config.requestid_ttl_seconds
        for company in self.companies.values():
            for key in [k for k, r in company.replies.items() if r.stored_at < horizon]:
                del company.replies[key]

    def expire_replies(self, realm_id: str | None = None) -> int:
        """Forget every stored requestid reply now (of one company, or all); returns how many."""
        companies = [self.company(realm_id)] if realm_id else list(self.companies.values())
        count = sum(len(c.replies) for c in companies)
        for company in companies:
            company.replies.clear()
        self.dirty = True
        return count

    # -- persistence -------------------------------------------------------------------------------------
    def to_json(self) -> dict[str, Any]:
        return {
            "clock_offset": self.clock.offset,
            "realm_seq": self._realm_seq,
            "companies": [company_to_json(c) for c in self.companies.values()],
            "apps": [asdict(app) for app in self.apps.values()],
            "tokens": self.tokens.to_json(),
            "connections": sorted(self.connections),
        }

    def save(self, path: str | None = None) -> None:
        target = path or self.config.state_file
        if not target:
            return
        self.tokens.purge(self.clock)
        self.purge_replies()
        folder = os.path.dirname(os.path.abspath(target))
        # Write then rename, so a crash never leaves half a state file.
        with tempfile.NamedTemporaryFile("w", dir=folder, delete=False, suffix=".tmp", encoding="utf-8") as handle:
            json.dump(self.to_json(), handle)
        os.replace(handle.name, target)
        self.dirty = False

    def load(self, path: str) -> None:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
        self.clock.offset = max(self.clock.offset, float(data.get("clock_offset", 0.0)))
        self._realm_seq = int(data.get("realm_seq", 0))
        self.companies = {c["realm_id"]: company_from_json(c) for c in data.get("companies", [])}
        for app in data.get("apps", []):
            self.apps.setdefault(app["client_id"], AppRegistration(**app))
        self.tokens = TokenStore.from_json(data.get("tokens", {}))
        self.connections = {(c, r) for c, r in data.get("connections", [])}

    def reset(self) -> None:
        """Forget every company, token and connection on purpose: back to the configured apps and, when
        seeding, one fresh company (the same realm id as at first start). The clock stays where it is."""
        self.companies = {}
        self.apps = {app.client_id: app for app in self.config.apps}
        self.tokens = TokenStore()
        self.connections = set()
        self.faults = Faults()
        self._realm_seq = 0
        if self.config.seed:
            self.create_company(*SEED_COMPANY)
        self.dirty = True
        self.save()
