"""reparam.diagnostics (see DESIGN.md)."""
__all__: list[str] = []
