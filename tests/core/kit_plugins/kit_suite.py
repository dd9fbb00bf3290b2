"""Copied into a folder outside the repository as test_kit.py and run there by test_conformance_kit.py."""

from __future__ import annotations

import doublebooker
import producers
from ledgerbridge.testing.conformance import plugin_test_class

TestDoubleBooker = plugin_test_class(doublebooker, "doublebooker", observe=doublebooker.ledger)
TestUnobserved = plugin_test_class(doublebooker, "unobserved")
TestBlindObserver = plugin_test_class(doublebooker, "blind", observe=doublebooker.nothing)
TestTidyProducer = plugin_test_class(producers.Tidy(), "tidy", prepare=producers.connect)
TestSloppyProducer = plugin_test_class(producers.Sloppy(), "sloppy", prepare=producers.connect)
TestRoleless = plugin_test_class(producers.Roleless(), "roleless")
