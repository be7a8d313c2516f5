"""File formats: the streaming case-file reader, packages, and the receipt writer."""
