package capture

import (
	"fmt"

	"golang.org/x/net/bpf"
)

// packetOutgoing is the packet type the kernel gives frames this host sends
// (PACKET_OUTGOING). On loopback every packet is seen twice — going out and
// coming in — so the filter drops the outgoing copy and each counts once.
const packetOutgoing = 4

// Filter builds a classic BPF program for Ethernet-framed packets that
// accepts IPv4 and IPv6 TCP segments to or from any of ports and drops the
// outgoing copy of every packet (dropOutgoing: on lo, where it is a
// duplicate). snap bounds the bytes kept per packet. It is what
// `tcp port P1 or tcp port P2 …` compiles to, without libpcap.
func Filter(ports []int, snap uint32, dropOutgoing bool) ([]bpf.RawInstruction, error) {
	if len(ports) == 0 || len(ports) > 16 {
		return nil, fmt.Errorf("filter: %d ports (want 1 to 16)", len(ports))
	}
	for _, p := range ports {
		if p <= 0 || p > 65535 {
			return nil, fmt.Errorf("filter: port %d out of range", p)
		}
	}
	// The port test is emitted twice (IPv4 with X = header length, IPv6 with
	// X = 40): load source port, compare with each; load destination port,
	// compare with each.
	portTest := func(offset uint32) []bpf.Instruction {
		var ins []bpf.Instruction
		for _, field := range []uint32{offset, offset + 2} {
			ins = append(ins, bpf.LoadIndirect{Off: field, Size: 2})
			for _, p := range ports {
				// SkipTrue is patched below to jump to accept.
				ins = append(ins, bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(p)})
			}
		}
		return append(ins, bpf.RetConstant{Val: 0})
	}

	var prog []bpf.Instruction
	if dropOutgoing {
		prog = append(prog,
			bpf.LoadExtension{Num: bpf.ExtType},
			bpf.JumpIf{Cond: bpf.JumpEqual, Val: packetOutgoing, SkipTrue: 0}, // → drop (patched)
		)
	}
	prog = append(prog,
		bpf.LoadAbsolute{Off: 12, Size: 2}, // EtherType
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x0800},
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 0x86dd},
		bpf.RetConstant{Val: 0},
	)
	v4 := len(prog)
	prog = append(prog,
		bpf.LoadAbsolute{Off: 23, Size: 1},                          // IPv4 protocol
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 0},       // not TCP → drop (patched)
		bpf.LoadAbsolute{Off: 20, Size: 2},                          // flags + fragment offset
		bpf.JumpIf{Cond: bpf.JumpBitsSet, Val: 0x1fff, SkipTrue: 0}, // a later fragment → drop (patched)
		bpf.LoadMemShift{Off: 14},                                   // X = IPv4 header length
	)
	prog = append(prog, portTest(14)...)
	v6 := len(prog)
	prog = append(prog,
		bpf.LoadAbsolute{Off: 20, Size: 1},                    // IPv6 next header
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: 6, SkipFalse: 0}, // → drop (patched)
		bpf.LoadConstant{Dst: bpf.RegX, Val: 40},
	)
	prog = append(prog, portTest(14)...)
	accept := len(prog)
	prog = append(prog, bpf.RetConstant{Val: snap})
	drop := accept + 1
	prog = append(prog, bpf.RetConstant{Val: 0})

	// Patch the jumps now that every target's index is known.
	tooFar := false
	skip := func(from, to int) uint8 {
		n := to - from - 1
		if n > 255 {
			tooFar = true
		}
		return uint8(n)
	}
	for i, ins := range prog {
		j, ok := ins.(bpf.JumpIf)
		if !ok {
			continue
		}
		switch {
		case i < v4 && j.Val == packetOutgoing && dropOutgoing && i <= 1:
			j.SkipTrue = skip(i, drop)
		case i < v4 && j.Val == 0x0800:
			j.SkipTrue = skip(i, v4)
		case i < v4 && j.Val == 0x86dd:
			j.SkipTrue = skip(i, v6)
		case (i == v4+1 || i == v6+1) && j.Val == 6:
			j.SkipFalse = skip(i, drop)
		case i == v4+3:
			j.SkipTrue = skip(i, drop)
		default: // a port comparison
			j.SkipTrue = skip(i, accept)
		}
		prog[i] = j
	}
	if tooFar {
		return nil, fmt.Errorf("filter: too many ports for one program")
	}
	return bpf.Assemble(prog)
}
