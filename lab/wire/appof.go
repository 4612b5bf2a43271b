package wire

import (
	"encoding/binary"

	"github.com/gopacket/gopacket/layers"
)

// AppOf names the app a packet is to or from by its TCP ports alone, with
// no decoding state: for counting, by app, packets dropped before they
// could be decoded. It reads only what NewDecoder set, so it is safe from
// any goroutine while the decoder runs. ok is false for a packet that is
// not TCP of a lab port (or too short to tell).
func (d *Decoder) AppOf(data []byte) (app string, ok bool) {
	ip := data
	switch d.linkType {
	case layers.LinkTypeEthernet:
		if len(data) < 14 {
			return "", false
		}
		typ, off := binary.BigEndian.Uint16(data[12:]), 14
		for (typ == 0x8100 || typ == 0x88a8) && len(data) >= off+4 { // VLAN tags
			typ, off = binary.BigEndian.Uint16(data[off+2:]), off+4
		}
		ip = data[off:]
	case layers.LinkTypeNull, layers.LinkTypeLoop:
		ip = data[min(len(data), 4):]
	case layers.LinkTypeLinuxSLL:
		ip = data[min(len(data), 16):]
	case layers.LinkTypeLinuxSLL2:
		ip = data[min(len(data), 20):]
	}
	var tcp []byte
	switch {
	case len(ip) >= 20 && ip[0]>>4 == 4 && ip[9] == 6:
		tcp = ip[min(len(ip), int(ip[0]&0x0f)*4):]
	case len(ip) >= 40 && ip[0]>>4 == 6 && ip[6] == 6:
		tcp = ip[40:]
	}
	if len(tcp) < 4 {
		return "", false
	}
	for _, port := range []uint16{binary.BigEndian.Uint16(tcp[2:]), binary.BigEndian.Uint16(tcp)} {
		if a, ok := d.ports[port]; ok {
			return a.Name, true
		}
	}
	return "", false
}
