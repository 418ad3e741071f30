"""Black-box variational inference: ELBO, sticking-the-landing, variational families, ``fit``."""

from reparam.vi.detach import detach_parameters, register_detach

__all__ = ["detach_parameters", "register_detach"]
