"""Finance reports rendered from a reconciliation document: tables, CSV, XLSX."""
