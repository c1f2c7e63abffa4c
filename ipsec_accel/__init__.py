"""FreeBSD's inline IPsec offload infrastructure (ipsec_offload.c, "ipsec_accel")
and the IPsec datapath around it: ifnets, mbufs and tags, the taskqueue, the
ESP transform (xform_esp.c) with its algorithm descriptors (opencrypto) and IP
packets.  See docs/ARCHITECTURE.md for which module models which FreeBSD file.
"""
