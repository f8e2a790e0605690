"""Library code of the Luigi DW ELT (MySQL + access logs -> landing -> store -> pres).

One module per concern; ``luigi_dw_etl.py`` at the repository root is the thin Luigi
task graph that calls into this package. Nothing here connects to a database or touches
the file system at import time.
"""
