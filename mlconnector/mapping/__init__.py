"""Mapping Expensify names to QuickBooks names: pure rules, and the CSV/TOML files that carry them."""
