"""Latent spaces of trained generators: projection of real images into them (`projection`),
semantic directions in them and edits along those (`directions`), over one description of where
an architecture's latents live (`space`)."""
