"""reparam.vi (see DESIGN.md)."""
