// Package faults holds protolab's fault-tolerance tests: each breaks a real
// component under a running lab — a container killed on a real Docker
// engine, the SSH link to the lab host cut by killing a real sshd's child,
// the remote tcpdump killed, the loopback interface taken down inside a
// network namespace, the state directory made read-only, the disk for
// --pcap full — and checks that the lab's event stream says so within
// 2 s, that the lab recovers without a restart, and that nothing already
// captured is lost.
package faults
