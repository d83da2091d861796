"""Host-side harness for the failover bench: namespaces, QEMU guests, traffic, measurements."""
