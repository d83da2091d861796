// SPDX-License-Identifier: GPL-2.0

#include <linux/etherdevice.h>
#include <linux/netdevice.h>

#ifdef CONFIG_NET

__rust_helper void *rust_helper_netdev_priv(const struct net_device *dev)
{
	return netdev_priv(dev);
}

__rust_helper void rust_helper_dev_addr_set(struct net_device *dev, const u8 *addr)
{
	dev_addr_set(dev, addr);
}

__rust_helper void rust_helper_dev_net_set(struct net_device *dev, struct net *net)
{
	dev_net_set(dev, net);
}

__rust_helper void rust_helper_eth_hw_addr_random(struct net_device *dev)
{
	eth_hw_addr_random(dev);
}

__rust_helper void rust_helper_netif_tx_disable(struct net_device *dev)
{
	netif_tx_disable(dev);
}

#endif
