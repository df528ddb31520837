"""Planning: reports and mappings in, postings out. Pure: no I/O, no state."""
