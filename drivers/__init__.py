"""Mock NIC drivers implementing if_ipsec_accel_methods (mlx5, ixgbe, ixgbevf,
netdevsim, chelsio and a faulty driver for race tests).  They really encrypt."""
