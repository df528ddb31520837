"""The QuickBooks Web Connector side: the protocol in plain Python, and the Spyne service over it."""
