// SPDX-License-Identifier: GPL-2.0

#include <linux/netdevice.h>

#ifdef CONFIG_NET

__rust_helper void *rust_helper_netdev_rx_handler_data(const struct net_device *dev)
{
	return rcu_dereference(dev->rx_handler_data);
}

#endif
