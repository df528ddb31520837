"""qbXML for QuickBooks Desktop: build requests in schema order, parse responses, classify status codes.

Only lxml and the models are used here; nothing reads or writes the state file. The Web Connector
server calls :mod:`.build`, :mod:`.batch` and :mod:`.parse`; :mod:`.status` says what to do with a
status code.
"""

SUPPORTED_VERSIONS = ("13.0", "16.0")
