"""Background and crowd extension: the generator protocol and its backends (external generated clips,
diffusion inpainting/outpainting, procedural crowds, classical set extension) and camera-matched layers."""
