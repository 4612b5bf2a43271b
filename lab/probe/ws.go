package probe

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"strings"
	"time"

	"github.com/gorilla/websocket"

	"github.com/protolab/protolab-tui/protocol"
)

// wsSession speaks WebSocket to the app's /echo endpoint over one connection.
type wsSession struct {
	c        *conn
	ws       *websocket.Conn
	hs       time.Duration
	deadline time.Time // the deadline last set on ws
	deflate  string    // the compression negotiated
}

func newWSSession(ctx context.Context, t Target) (*wsSession, error) {
	c, err := t.dial(ctx, t.alpn()...)
	if err != nil {
		return nil, err
	}
	give := func(context.Context, string, string) (net.Conn, error) { return c.Conn, nil }
	d := websocket.Dialer{
		NetDialContext:    give,
		NetDialTLSContext: give, // already TLS: gorilla uses it as is
		HandshakeTimeout:  10 * time.Second,
		// permessage-deflate without context takeover, when the app compresses
		EnableCompression: t.Compression == protocol.CompressionDeflate,
	}
	scheme := "ws"
	if t.Protocol.Secure() {
		scheme = "wss"
	}
	url := scheme + "://" + t.hostPort() + t.echoPath()
	start := time.Now()
	ws, resp, err := d.DialContext(ctx, url, nil)
	if err != nil {
		c.Close()
		if resp != nil {
			return nil, fmt.Errorf("%s: upgrade at %s refused: %s", t.name(), url, resp.Status)
		}
		return nil, fmt.Errorf("%s: upgrade at %s: %w", t.name(), url, err)
	}
	c.saw(resp.Header)
	if resp.StatusCode != http.StatusSwitchingProtocols {
		ws.Close()
		return nil, fmt.Errorf("%s: upgrade at %s answered %s", t.name(), url, resp.Status)
	}
	s := &wsSession{c: c, ws: ws, hs: time.Since(start)}
	if ext := resp.Header.Get("Sec-WebSocket-Extensions"); strings.Contains(ext, "permessage-deflate") {
		s.deflate = protocol.CompressionDeflate
	} else if d.EnableCompression {
		ws.Close()
		return nil, fmt.Errorf("%s: the app's compression is %s, but the upgrade at %s negotiated none (Sec-WebSocket-Extensions %q)", t.name(), t.Compression, url, ext)
	}
	return s, nil
}

func (s *wsSession) compression() string { return s.deflate }

func (s *wsSession) conn() *conn              { return s.c }
func (s *wsSession) handshake() time.Duration { return s.hs }

func (s *wsSession) echo(ctx context.Context, msg string) (string, error) {
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(10 * time.Second)
	}
	if !deadline.Equal(s.deadline) { // the probe's deadline is per run: set it once
		s.deadline = deadline
		_ = s.ws.SetWriteDeadline(deadline)
		_ = s.ws.SetReadDeadline(deadline)
	}
	if err := s.ws.WriteMessage(websocket.TextMessage, []byte(msg)); err != nil {
		return "", err
	}
	for {
		typ, b, err := s.ws.ReadMessage()
		if err != nil {
			var ce *websocket.CloseError
			if errors.As(err, &ce) {
				return "", fmt.Errorf("%w: close %d %q", errClosedByPeer, ce.Code, ce.Text)
			}
			return "", err
		}
		if typ == websocket.TextMessage {
			return string(b), nil
		}
	}
}

// close ends the conversation with a close handshake (1000, normal), waiting
// briefly for the server's close frame so both show on the wire.
func (s *wsSession) close() {
	msg := websocket.FormatCloseMessage(websocket.CloseNormalClosure, "probe done")
	if err := s.ws.WriteControl(websocket.CloseMessage, msg, time.Now().Add(time.Second)); err == nil {
		_ = s.ws.SetReadDeadline(time.Now().Add(time.Second))
		for {
			if _, _, err := s.ws.ReadMessage(); err != nil {
				break
			}
		}
	}
	s.ws.Close()
}
