"""The figure tool: the paper's qualitative comparison, drawn by running each finished job's
network of a sweep on an image of its evaluation set (``sweep.py figure``)."""
