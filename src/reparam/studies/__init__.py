"""Reproducible studies: experiments from papers, run end to end with tables and figures."""

from reparam.studies.delta_control import DeltaControlled, taylor_expansion

__all__ = ["DeltaControlled", "taylor_expansion"]
