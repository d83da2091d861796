// SPDX-License-Identifier: GPL-2.0

#include <linux/etherdevice.h>
#include <linux/if_vlan.h>
#include <linux/netdevice.h>
#include <linux/notifier.h>
#include <net/netdev_lock.h>
#include <net/sch_generic.h>

#ifdef CONFIG_NET

__rust_helper void rust_helper_dev_hold(struct net_device *dev)
{
	dev_hold(dev);
}

__rust_helper void rust_helper_dev_put(struct net_device *dev)
{
	dev_put(dev);
}

__rust_helper bool rust_helper_netif_running(const struct net_device *dev)
{
	return netif_running(dev);
}

__rust_helper bool rust_helper_netif_carrier_ok(const struct net_device *dev)
{
	return netif_carrier_ok(dev);
}

__rust_helper bool rust_helper_qdisc_tx_is_noop(const struct net_device *dev)
{
	return qdisc_tx_is_noop(dev);
}

__rust_helper struct net_device *
rust_helper_netdev_notifier_info_to_dev(const struct netdev_notifier_info *info)
{
	return netdev_notifier_info_to_dev(info);
}

__rust_helper void
rust_helper_netdev_assert_locked_ops_compat_or_invisible(const struct net_device *dev)
{
	netdev_assert_locked_ops_compat_or_invisible(dev);
}

__rust_helper void *rust_helper_netdev_rx_handler_data(const struct net_device *dev)
{
	return rcu_dereference(dev->rx_handler_data);
}

__rust_helper int rust_helper_notifier_from_errno(int err)
{
	return notifier_from_errno(err);
}

__rust_helper struct net *rust_helper_dev_net(const struct net_device *dev)
{
	return dev_net(dev);
}

__rust_helper void *rust_helper_netdev_priv(const struct net_device *dev)
{
	return netdev_priv(dev);
}

__rust_helper void rust_helper_netif_tx_start_all_queues(struct net_device *dev)
{
	netif_tx_start_all_queues(dev);
}

__rust_helper void rust_helper_netif_tx_wake_all_queues(struct net_device *dev)
{
	netif_tx_wake_all_queues(dev);
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

__rust_helper struct sk_buff *rust_helper_alloc_skb(unsigned int size, gfp_t priority)
{
	return alloc_skb(size, priority);
}

__rust_helper void *rust_helper_skb_put_data(struct sk_buff *skb, const void *data,
					     unsigned int len)
{
	return skb_put_data(skb, data, len);
}

__rust_helper u16 rust_helper_skb_get_queue_mapping(const struct sk_buff *skb)
{
	return skb_get_queue_mapping(skb);
}

__rust_helper __be16 rust_helper_skb_protocol(const struct sk_buff *skb, bool skip_vlan)
{
	return skb_protocol(skb, skip_vlan);
}

__rust_helper void rust_helper_netdev_hold(struct net_device *dev, netdevice_tracker *tracker,
					   gfp_t gfp)
{
	netdev_hold(dev, tracker, gfp);
}

__rust_helper void rust_helper_netdev_put(struct net_device *dev, netdevice_tracker *tracker)
{
	netdev_put(dev, tracker);
}

__rust_helper void rust_helper_netdev_lock_ops(struct net_device *dev)
{
	netdev_lock_ops(dev);
}

__rust_helper void rust_helper_netdev_unlock_ops(struct net_device *dev)
{
	netdev_unlock_ops(dev);
}

__rust_helper void rust_helper_netif_addr_lock_bh(struct net_device *dev)
{
	netif_addr_lock_bh(dev);
}

__rust_helper void rust_helper_netif_addr_unlock_bh(struct net_device *dev)
{
	netif_addr_unlock_bh(dev);
}

__rust_helper void rust_helper_netif_tx_disable(struct net_device *dev)
{
	netif_tx_disable(dev);
}

__rust_helper void rust_helper_dev_core_stats_tx_dropped_inc(struct net_device *dev)
{
	dev_core_stats_tx_dropped_inc(dev);
}

__rust_helper bool rust_helper_skb_rx_queue_recorded(const struct sk_buff *skb)
{
	return skb_rx_queue_recorded(skb);
}

__rust_helper u16 rust_helper_skb_get_rx_queue(const struct sk_buff *skb)
{
	return skb_get_rx_queue(skb);
}

__rust_helper struct qdisc_skb_cb *rust_helper_qdisc_skb_cb(const struct sk_buff *skb)
{
	return qdisc_skb_cb(skb);
}

__rust_helper void rust_helper_skb_set_queue_mapping(struct sk_buff *skb, u16 queue_mapping)
{
	skb_set_queue_mapping(skb, queue_mapping);
}

#endif
