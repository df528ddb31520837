"""ml-connector: Expensify expense reports into QuickBooks Desktop."""

__version__ = "0.1.0"
