"""reparam.nn (see DESIGN.md)."""
