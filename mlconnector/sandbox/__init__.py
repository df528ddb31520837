"""Simulators of the outside systems (QuickBooks, the Web Connector) for tests and `mlconnector demo`."""
