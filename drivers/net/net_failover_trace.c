// SPDX-License-Identifier: GPL-2.0
/* The net_failover:* tracepoints that net_failover_rust.rs calls. */

#define CREATE_TRACE_POINTS
#define CREATE_RUST_TRACE_POINTS
#include <trace/events/net_failover.h>
