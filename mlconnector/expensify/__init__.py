"""Expensify's Integration Server: job builders, the HTTP client, the export template and its parser.

``jobs`` builds request descriptions, ``client`` sends them (and owns ``requests``: its exceptions
never leave this package), ``template`` ships the FreeMarker templates, ``parse`` turns the
downloaded JSON Lines into validated reports. Import the modules directly; this package imports
nothing so that ``mlconnector --help`` stays fast.
"""
