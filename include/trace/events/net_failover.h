/* SPDX-License-Identifier: GPL-2.0 */
/*
 * Tracepoints of the failover master (drivers/net/net_failover_rust.rs): its slaves coming and
 * going, the changes of the slave that carries the traffic, and the announcements to its peers.
 */
#undef TRACE_SYSTEM
#define TRACE_SYSTEM net_failover

#if !defined(_TRACE_NET_FAILOVER_H) || defined(TRACE_HEADER_MULTI_READ)
#define _TRACE_NET_FAILOVER_H

#include <linux/netdevice.h>
#include <linux/tracepoint.h>

#ifndef _NET_FAILOVER_TRACE_ENUMS
#define _NET_FAILOVER_TRACE_ENUMS
/* The role of a slave: the passthrough primary (VF) or the paravirtual standby. */
enum net_failover_role {
	NET_FAILOVER_ROLE_NONE,
	NET_FAILOVER_ROLE_PRIMARY,
	NET_FAILOVER_ROLE_STANDBY,
};

/* Why the master looked at its slaves again, and so why the active slave changed. */
enum net_failover_reason {
	NET_FAILOVER_REASON_ENSLAVED,		/* a slave was enslaved */
	NET_FAILOVER_REASON_UNREGISTER,		/* a slave was released */
	NET_FAILOVER_REASON_UNPLUG_NOTICE,	/* the primary's driver is being unbound */
	NET_FAILOVER_REASON_LINK,		/* a slave's carrier changed */
	NET_FAILOVER_REASON_ADMIN,		/* a slave was set up or down */
};
#endif

TRACE_DEFINE_ENUM(NET_FAILOVER_ROLE_NONE);
TRACE_DEFINE_ENUM(NET_FAILOVER_ROLE_PRIMARY);
TRACE_DEFINE_ENUM(NET_FAILOVER_ROLE_STANDBY);
TRACE_DEFINE_ENUM(NET_FAILOVER_REASON_ENSLAVED);
TRACE_DEFINE_ENUM(NET_FAILOVER_REASON_UNREGISTER);
TRACE_DEFINE_ENUM(NET_FAILOVER_REASON_UNPLUG_NOTICE);
TRACE_DEFINE_ENUM(NET_FAILOVER_REASON_LINK);
TRACE_DEFINE_ENUM(NET_FAILOVER_REASON_ADMIN);

#define show_net_failover_role(role)					\
	__print_symbolic(role,						\
			 { NET_FAILOVER_ROLE_NONE, "none" },		\
			 { NET_FAILOVER_ROLE_PRIMARY, "primary" },	\
			 { NET_FAILOVER_ROLE_STANDBY, "standby" })

#define show_net_failover_reason(reason)				\
	__print_symbolic(reason,					\
			 { NET_FAILOVER_REASON_ENSLAVED, "enslaved" },	\
			 { NET_FAILOVER_REASON_UNREGISTER, "unregister" }, \
			 { NET_FAILOVER_REASON_UNPLUG_NOTICE, "unplug_notice" }, \
			 { NET_FAILOVER_REASON_LINK, "link" },		\
			 { NET_FAILOVER_REASON_ADMIN, "admin" })

DECLARE_EVENT_CLASS(net_failover_slave,
		    TP_PROTO(const struct net_device *master, const struct net_device *slave,
			     enum net_failover_role role),
		    TP_ARGS(master, slave, role),
		    TP_STRUCT__entry(__string(master, master->name)
				     __string(slave, slave->name)
				     __field(int, ifindex)
				     __field(int, role)),
		    TP_fast_assign(__assign_str(master);
				   __assign_str(slave);
				   __entry->ifindex = slave->ifindex;
				   __entry->role = role;),
		    TP_printk("master=%s slave=%s ifindex=%d role=%s",
			      __get_str(master), __get_str(slave), __entry->ifindex,
			      show_net_failover_role(__entry->role))
);

/* A slave was enslaved: it carries traffic from the next active_changed that names it. */
DEFINE_EVENT(net_failover_slave, net_failover_slave_enslaved,
	     TP_PROTO(const struct net_device *master, const struct net_device *slave,
		      enum net_failover_role role),
	     TP_ARGS(master, slave, role)
);

/* A slave was released, by its unregistration or by the master's. */
DEFINE_EVENT(net_failover_slave, net_failover_slave_released,
	     TP_PROTO(const struct net_device *master, const struct net_device *slave,
		      enum net_failover_role role),
	     TP_ARGS(master, slave, role)
);

/*
 * The slave that carries the traffic changed: from the role @old to the role @new (NONE: no
 * usable slave), whose device is @active (NULL with NONE), because of @reason on @cause.
 */
TRACE_EVENT(net_failover_active_changed,
	    TP_PROTO(const struct net_device *master, enum net_failover_role old,
		     enum net_failover_role new, const struct net_device *active,
		     enum net_failover_reason reason, const struct net_device *cause),
	    TP_ARGS(master, old, new, active, reason, cause),
	    TP_STRUCT__entry(__string(master, master->name)
			     __string(active, active ? active->name : "")
			     __string(cause, cause->name)
			     __field(int, old)
			     __field(int, new)
			     __field(int, reason)),
	    TP_fast_assign(__assign_str(master);
			   __assign_str(active);
			   __assign_str(cause);
			   __entry->old = old;
			   __entry->new = new;
			   __entry->reason = reason;),
	    TP_printk("master=%s old=%s new=%s active=%s reason=%s cause=%s",
		      __get_str(master), show_net_failover_role(__entry->old),
		      show_net_failover_role(__entry->new), __get_str(active),
		      show_net_failover_reason(__entry->reason), __get_str(cause))
);

/*
 * The master announced itself to its peers through @active: @count rounds of a gratuitous
 * ARP and an unsolicited neighbour advertisement per address.
 */
TRACE_EVENT(net_failover_announce,
	    TP_PROTO(const struct net_device *master, const struct net_device *active,
		     unsigned int count),
	    TP_ARGS(master, active, count),
	    TP_STRUCT__entry(__string(master, master->name)
			     __string(active, active->name)
			     __field(unsigned int, count)),
	    TP_fast_assign(__assign_str(master);
			   __assign_str(active);
			   __entry->count = count;),
	    TP_printk("master=%s active=%s count=%u",
		      __get_str(master), __get_str(active), __entry->count)
);

#endif /* _TRACE_NET_FAILOVER_H */

/* This part must be outside protection */
#include <trace/define_trace.h>
