"""The browser demo: serving the page over an export, and the export of a shipped model."""
