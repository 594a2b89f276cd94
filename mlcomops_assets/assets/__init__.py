"""Asset groups, one module each: ingestion -> validation -> preparation -> training -> evidence."""
