"""`ledgerbridge demo`, shipped beside the core: it names both vendors, so it is no part of the core.

The command reaches the `ledgerbridge` CLI through the `ledgerbridge.commands` entry-point group
(`ledgerbridge_demo.command:register`); the scripted day itself is `ledgerbridge_demo.demo`.
"""
