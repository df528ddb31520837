"""qbXML for QuickBooks Desktop: build requests in schema order, parse responses, classify status codes.

Only lxml and the models are used here; nothing reads or writes the state file. What the Web
Connector server calls:

- :mod:`.build`: ``bill_add``, ``journal_entry_add``, ``write_request`` (by mode), ``list_query``,
  ``reference_queries``, ``txn_query_by_ref``, ``build_message`` (the envelope, with error recovery).
- :mod:`.batch`: ``BatchItem``, ``take_batch``, ``pack``, ``build_batch`` (postings packed under a line budget).
- :mod:`.parse`: ``parse_response`` → ``MessageResponse`` of ``RequestResponse``.
- :mod:`.status`: ``classify(code, severity)`` → ``Action``.
- :mod:`.xml`: ``parse_xml`` (the one safe parser), ``to_bytes``, ``choose_version``.
- :mod:`.text`: ``clean_text``, ``memo``, ``truncate``, ``check_name``, ``format_amount`` and the maximum lengths.
"""

SUPPORTED_VERSIONS = ("13.0", "16.0")
