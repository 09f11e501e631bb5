"""xenpin: the Xen PV early-boot pagetable protocol, checked by execution and by proof."""

__version__ = "0.1.0"
