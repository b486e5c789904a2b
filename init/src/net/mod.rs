//! Brings the network up inside PID 1 for network targets, with no shell,
//! no busybox and no `ip=` kernel parameter. So far only the DHCP codec.

mod dhcp;
