"""reparam.models (see DESIGN.md)."""

from reparam.models.vae import VAE, VAEConfig

__all__ = ["VAE", "VAEConfig"]
