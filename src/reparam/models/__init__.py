"""reparam.models (see DESIGN.md)."""
