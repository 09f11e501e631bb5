"""Symbolic side of xenpin: closed forms of the boot walk and their Z3 encodings."""
