// SPDX-License-Identifier: GPL-2.0

#include <linux/if_vlan.h>
#include <linux/skbuff.h>
#include <net/sch_generic.h>

#ifdef CONFIG_NET

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

__rust_helper bool rust_helper_skb_mac_header_was_set(const struct sk_buff *skb)
{
	return skb_mac_header_was_set(skb);
}

__rust_helper unsigned char *rust_helper_skb_mac_header(const struct sk_buff *skb)
{
	return skb_mac_header(skb);
}

__rust_helper unsigned char *rust_helper_skb_tail_pointer(const struct sk_buff *skb)
{
	return skb_tail_pointer(skb);
}

__rust_helper void rust_helper_skb_set_queue_mapping(struct sk_buff *skb, u16 queue_mapping)
{
	skb_set_queue_mapping(skb, queue_mapping);
}

#endif
