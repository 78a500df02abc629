"""Finance reports from the typed rows of a stored reconciliation: tables, CSV, XLSX, HTML."""
