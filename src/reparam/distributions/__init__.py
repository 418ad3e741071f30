"""reparam.distributions (see DESIGN.md)."""
