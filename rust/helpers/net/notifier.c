// SPDX-License-Identifier: GPL-2.0

#include <linux/netdevice.h>
#include <net/netdev_lock.h>

#ifdef CONFIG_NET

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

#endif
