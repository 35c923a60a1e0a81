"""Date and number formats for interface languages Django ships none for (FORMAT_MODULE_PATH)."""
