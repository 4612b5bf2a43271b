package wire

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode/utf8"

	"google.golang.org/protobuf/encoding/protowire"
	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/reflect/protoreflect"
	"google.golang.org/protobuf/types/dynamicpb"

	"github.com/protolab/protolab-tui/protocol/labrpc"
)

// gRPC over HTTP/2: a stream whose request is application/grpc carries,
// each way, length-prefixed messages (a compressed flag byte, a 4-byte
// big-endian length, the message) across its DATA frames, and the
// response's trailers (or a trailers-only response's headers) carry
// grpc-status and grpc-message. Each message is a record, decoded — only
// when looked at — without a schema (protowire: field numbers, wire types,
// values, nested messages best-effort) and, when the lab's own .proto
// knows the method (labrpc.MethodTypes), with its field names.

// Bounds.
const (
	// grpcKeep is how much of a message is kept (for its decoding); the
	// rest is counted, not held.
	grpcKeep = 2048
	// maxGRPCLength is the largest message length believed: a prefix
	// announcing more is refused (nothing is allocated by it) and the
	// stream's way is not followed further.
	maxGRPCLength = 64 << 20
	// maxGRPCInflated bounds a compressed (gzip) message inflated for
	// display.
	maxGRPCInflated = 64 << 10
	// grpcDepth bounds nested messages decoded; grpcText the text of one
	// decoding.
	grpcDepth = 8
	grpcText  = 512
)

// grpcReader reassembles one way of a gRPC stream into messages across
// DATA frames.
type grpcReader struct {
	hdr        [5]byte
	nhdr       int
	in         bool // reading a message's bytes
	length     int
	got        int
	compressed bool
	kept       []byte
	lost       int
	seq        int
	broken     bool // a prefix made no sense: not followed further
}

// feed takes DATA bytes; done gets each message completed, flag each
// problem.
func (g *grpcReader) feed(p []byte, done func(*GRPCMessage), flag func(string)) {
	for len(p) > 0 && !g.broken {
		if !g.in {
			n := copy(g.hdr[g.nhdr:], p)
			g.nhdr += n
			p = p[n:]
			if g.nhdr < len(g.hdr) {
				return
			}
			g.nhdr = 0
			compressed, length := g.hdr[0], binary.BigEndian.Uint32(g.hdr[1:])
			switch {
			case compressed > 1:
				g.broken = true
				flag(fmt.Sprintf("a message prefix with compressed flag %d (it is 0 or 1): not gRPC framing, the stream's messages are not followed further", compressed))
				return
			case length > maxGRPCLength:
				g.broken = true
				flag(fmt.Sprintf("a message prefix announces %d bytes, beyond the %d the decoder believes: refused (nothing allocated), the stream's messages are not followed further", length, maxGRPCLength))
				return
			}
			g.in, g.length, g.got, g.compressed, g.lost = true, int(length), 0, compressed == 1, 0
			g.kept = nil
			if length == 0 {
				g.complete(done)
				continue
			}
		}
		n := min(g.length-g.got, len(p))
		if room := min(g.length, grpcKeep) - len(g.kept); room > 0 && g.lost == 0 {
			if g.kept == nil {
				g.kept = make([]byte, 0, min(g.length, grpcKeep))
			}
			g.kept = append(g.kept, p[:min(room, n)]...)
		}
		g.got += n
		p = p[n:]
		if g.got == g.length {
			g.complete(done)
		}
	}
}

func (g *grpcReader) complete(done func(*GRPCMessage)) {
	g.seq++
	m := &GRPCMessage{Seq: g.seq, Compressed: g.compressed, Length: g.length, Data: g.kept, Lost: g.lost}
	g.in, g.kept, g.lost = false, nil, 0
	done(m)
}

// skip passes over n lost bytes and reports whether it could: only inside
// a message whose length was read is the next prefix where it says.
func (g *grpcReader) skip(n int, done func(*GRPCMessage)) bool {
	if g.broken || n == 0 {
		return true
	}
	if !g.in || g.nhdr > 0 || n > g.length-g.got {
		g.broken = true
		return false
	}
	g.got += n
	g.lost += n
	if g.got == g.length {
		g.complete(done)
	}
	return true
}

// pending reports whether a message is partly read.
func (g *grpcReader) pending() bool { return !g.broken && (g.in || g.nhdr > 0) }

// GRPCMessage is one gRPC message.
type GRPCMessage struct {
	Stream uint32
	// Method is the stream's :path (/package.Service/Method).
	Method string
	// Request says the client sent it.
	Request bool
	// Seq numbers the messages of the stream's way from 1.
	Seq        int
	Compressed bool
	// Length is the message's size, Data its start (at most grpcKeep
	// bytes), Lost the bytes of it missing from the capture.
	Length int
	Data   []byte
	Lost   int
	// Encoding is the way's grpc-encoding (for a compressed message).
	Encoding string
}

func (m *GRPCMessage) fill(r *Record) {
	r.Layer = "grpc"
	r.Len = 5 + m.Length
	r.Payload = m.Length
	r.Data = m.Data
	r.lazy = m.format
}

func (m *GRPCMessage) format(r *Record) {
	way := "request"
	if !m.Request {
		way = "response"
	}
	r.add("method", "%s", m.Method)
	r.add("stream_id", "%d", m.Stream)
	r.add("message", "%s #%d", way, m.Seq)
	r.add("compressed", "%v", m.Compressed)
	r.add("length", "%d", m.Length)
	s := fmt.Sprintf("gRPC %s %s #%d len=%d", m.Method, way, m.Seq, m.Length)
	body, whole := m.Data, len(m.Data) == m.Length && m.Lost == 0
	if m.Compressed {
		s += " [compressed"
		if m.Encoding != "" {
			s += ": " + m.Encoding
			r.add("encoding", "%s", m.Encoding)
		}
		s += "]"
		body, whole = nil, false
		if inflated, err := inflateGRPC(m); err != nil {
			r.add("inflated", "not decoded: %v", err)
		} else {
			body, whole = inflated, true
			r.add("inflated_length", "%d", len(inflated))
		}
	}
	if m.Lost > 0 {
		r.add("lost_bytes", "%d", m.Lost)
		s += fmt.Sprintf(" [partial: %d bytes not captured]", m.Lost)
	}
	if body == nil {
		r.Summary = s
		return
	}
	raw, err := protowireText(body)
	switch {
	case err != nil && whole:
		r.add("fields", "%s (not a protobuf message: %v)", raw, err)
	case !whole:
		r.add("fields", "%s … (the first %d of %d bytes)", raw, len(body), m.Length)
	default:
		r.add("fields", "%s", raw)
	}
	typed := ""
	if in, out, ok := labrpc.MethodTypes(m.Method); ok && whole {
		desc := out
		if m.Request {
			desc = in
		}
		msg := dynamicpb.NewMessage(desc)
		if err := (proto.UnmarshalOptions{RecursionLimit: grpcDepth * 4}).Unmarshal(body, msg); err != nil {
			r.add("decoded", "not a %s: %v", desc.FullName(), err)
		} else {
			var b strings.Builder
			typedText(&b, msg.ProtoReflect(), 0)
			typed = string(desc.FullName()) + "{" + b.String() + "}"
			r.add("type", "%s", desc.FullName())
			r.add("decoded", "%s", b.String())
		}
	}
	if typed != "" {
		s += " " + typed
	} else {
		s += " {" + raw + "}"
	}
	r.Summary = s
}

// inflateGRPC inflates a compressed message for display, within bounds.
func inflateGRPC(m *GRPCMessage) ([]byte, error) {
	if len(m.Data) != m.Length || m.Lost > 0 {
		return nil, fmt.Errorf("only the first %d of its %d bytes are kept", len(m.Data), m.Length)
	}
	if m.Encoding != "gzip" {
		return nil, fmt.Errorf("grpc-encoding %q is not one the decoder inflates (gzip)", m.Encoding)
	}
	zr, err := gzip.NewReader(bytes.NewReader(m.Data))
	if err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	}
	var out bytes.Buffer
	if _, over, err := inflateCapped(zr, maxGRPCInflated, func(b []byte) { out.Write(b) }); err != nil {
		return nil, fmt.Errorf("gzip: %w", err)
	} else if over {
		return nil, fmt.Errorf("it inflates past %d bytes: refused", maxGRPCInflated)
	}
	return out.Bytes(), nil
}

// errCutShort: a length-delimited field runs past the bytes there are (a
// message kept in part, or not a message).
var errCutShort = errors.New("a length-delimited field runs past the end")

// protowireText renders a message's wire form without a schema: field
// number, then the value by wire type (varint, fixed32, fixed64, bytes —
// shown as text when printable, else as a nested message when it parses
// as one, else as hex — and groups), nested messages to a bounded depth,
// the text to a bounded length. err says where the bytes stopped making
// sense; the text holds what came before.
func protowireText(b []byte) (string, error) {
	var out strings.Builder
	err := wireFields(&out, b, 0)
	return out.String(), err
}

func wireFields(out *strings.Builder, b []byte, depth int) error {
	for first := true; len(b) > 0; first = false {
		if out.Len() >= grpcText {
			out.WriteString(" …")
			return nil
		}
		num, typ, n := protowire.ConsumeTag(b)
		if n < 0 {
			return fmt.Errorf("field tag: %w", protowire.ParseError(n))
		}
		b = b[n:]
		if !first {
			out.WriteByte(' ')
		}
		out.WriteString(strconv.FormatInt(int64(num), 10))
		out.WriteByte(':')
		switch typ {
		case protowire.VarintType:
			v, n := protowire.ConsumeVarint(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			out.WriteString(strconv.FormatUint(v, 10))
			b = b[n:]
		case protowire.Fixed32Type:
			v, n := protowire.ConsumeFixed32(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			fmt.Fprintf(out, "0x%08x", v)
			b = b[n:]
		case protowire.Fixed64Type:
			v, n := protowire.ConsumeFixed64(b)
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			fmt.Fprintf(out, "0x%016x", v)
			b = b[n:]
		case protowire.BytesType:
			v, n := protowire.ConsumeBytes(b)
			if l, k := protowire.ConsumeVarint(b); n < 0 && k > 0 && l > uint64(len(b)-k) {
				// Cut short (a message kept in part): what there is of it.
				v = b[k:]
				if printable(v) {
					out.WriteString(strconv.Quote(textPreview(v, 128)))
				} else {
					fmt.Fprintf(out, "0x%x", v[:min(len(v), 32)])
				}
				fmt.Fprintf(out, "… (%d bytes, the first %d kept)", l, len(v))
				return errCutShort
			}
			if n < 0 {
				return fmt.Errorf("field %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			wireBytes(out, v, depth)
		case protowire.StartGroupType:
			v, n := protowire.ConsumeGroup(num, b)
			if n < 0 {
				return fmt.Errorf("group %d: %w", num, protowire.ParseError(n))
			}
			b = b[n:]
			out.WriteString("group{")
			if depth+1 < grpcDepth {
				if err := wireFields(out, v, depth+1); err != nil {
					return err
				}
			} else {
				fmt.Fprintf(out, "%d bytes", len(v))
			}
			out.WriteByte('}')
		default:
			return fmt.Errorf("field %d: wire type %d out of place", num, typ)
		}
	}
	return nil
}

// wireBytes renders a length-delimited value: printable text, else a
// nested message when it parses as one whole, else hex.
func wireBytes(out *strings.Builder, v []byte, depth int) {
	if printable(v) {
		out.WriteString(strconv.Quote(textPreview(v, 128)))
		return
	}
	if depth+1 < grpcDepth && len(v) > 0 {
		var nested strings.Builder
		if wireFields(&nested, v, depth+1) == nil {
			out.WriteByte('{')
			out.WriteString(nested.String())
			out.WriteByte('}')
			return
		}
	}
	fmt.Fprintf(out, "0x%x", v[:min(len(v), 32)])
	if len(v) > 32 {
		fmt.Fprintf(out, "… (%d bytes)", len(v))
	}
}

// printable reports whether b is UTF-8 text without control characters.
func printable(b []byte) bool {
	if !utf8.Valid(b) {
		return false
	}
	for _, r := range string(b) {
		if r < 0x20 && r != '\t' && r != '\n' || r == 0x7f {
			return false
		}
	}
	return true
}

// typedText renders a message decoded with its schema: name=value for
// each field set, in field order.
func typedText(out *strings.Builder, m protoreflect.Message, depth int) {
	fields := m.Descriptor().Fields()
	first := true
	for i := range fields.Len() {
		fd := fields.Get(i)
		if !m.Has(fd) {
			continue
		}
		if out.Len() >= grpcText {
			out.WriteString(" …")
			return
		}
		if !first {
			out.WriteByte(' ')
		}
		first = false
		out.WriteString(string(fd.Name()))
		out.WriteByte('=')
		v := m.Get(fd)
		switch {
		case fd.IsList():
			l := v.List()
			out.WriteByte('[')
			for j := range l.Len() {
				if j > 0 {
					out.WriteString(", ")
				}
				typedValue(out, fd, l.Get(j), depth)
			}
			out.WriteByte(']')
		case fd.IsMap():
			out.WriteByte('{')
			n := 0
			v.Map().Range(func(k protoreflect.MapKey, mv protoreflect.Value) bool {
				if n > 0 {
					out.WriteString(", ")
				}
				n++
				out.WriteString(k.String())
				out.WriteString(": ")
				typedValue(out, fd.MapValue(), mv, depth)
				return out.Len() < grpcText
			})
			out.WriteByte('}')
		default:
			typedValue(out, fd, v, depth)
		}
	}
	if u := m.GetUnknown(); len(u) > 0 {
		raw, _ := protowireText(u)
		out.WriteString(" unknown{" + raw + "}")
	}
}

func typedValue(out *strings.Builder, fd protoreflect.FieldDescriptor, v protoreflect.Value, depth int) {
	switch fd.Kind() {
	case protoreflect.StringKind:
		out.WriteString(strconv.Quote(textPreview([]byte(v.String()), 128)))
	case protoreflect.BytesKind:
		wireBytes(out, v.Bytes(), grpcDepth)
	case protoreflect.EnumKind:
		if ev := fd.Enum().Values().ByNumber(v.Enum()); ev != nil {
			out.WriteString(string(ev.Name()))
		} else {
			out.WriteString(strconv.FormatInt(int64(v.Enum()), 10))
		}
	case protoreflect.MessageKind, protoreflect.GroupKind:
		out.WriteByte('{')
		if depth+1 < grpcDepth {
			typedText(out, v.Message(), depth+1)
		} else {
			out.WriteString("…")
		}
		out.WriteByte('}')
	default:
		out.WriteString(v.String())
	}
}

// GRPCStatus is a gRPC call's outcome, from its response's trailers (or a
// trailers-only response's headers).
type GRPCStatus struct {
	Stream       uint32
	Method       string
	Code         string // grpc-status as sent
	Message      string // grpc-message, percent-encoded as sent
	TrailersOnly bool
}

func (g *GRPCStatus) fill(r *Record) {
	r.Layer = "grpc"
	r.lazy = g.format
}

func (g *GRPCStatus) format(r *Record) {
	name := GRPCCodeName(g.Code)
	msg := grpcUnescape(g.Message)
	r.add("method", "%s", g.Method)
	r.add("stream_id", "%d", g.Stream)
	r.add("grpc_status", "%s", g.Code)
	r.add("grpc_status_name", "%s", name)
	r.add("grpc_message", "%s", msg)
	r.add("trailers_only", "%v", g.TrailersOnly)
	s := fmt.Sprintf("gRPC %s status %s %s", g.Method, g.Code, name)
	if msg != "" {
		s += fmt.Sprintf(" %q", textPreview([]byte(msg), 80))
	}
	r.Summary = s
}

// GRPCCodeName names a gRPC status code.
func GRPCCodeName(code string) string {
	names := [...]string{"OK", "CANCELLED", "UNKNOWN", "INVALID_ARGUMENT", "DEADLINE_EXCEEDED", "NOT_FOUND",
		"ALREADY_EXISTS", "PERMISSION_DENIED", "RESOURCE_EXHAUSTED", "FAILED_PRECONDITION", "ABORTED",
		"OUT_OF_RANGE", "UNIMPLEMENTED", "INTERNAL", "UNAVAILABLE", "DATA_LOSS", "UNAUTHENTICATED"}
	if n, err := strconv.Atoi(code); err == nil && n >= 0 && n < len(names) {
		return names[n]
	}
	return "code " + code
}

// grpcUnescape undoes grpc-message's percent-encoding (bad escapes are
// left as they are).
func grpcUnescape(s string) string {
	if !strings.Contains(s, "%") {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '%' && i+2 < len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+3], 16, 8); err == nil {
				b.WriteByte(byte(v))
				i += 2
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
