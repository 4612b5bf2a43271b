package protocol

// What an sse app's streams carry, spelled here for the app and the lab's
// probes and decoders alike.
const (
	// StreamHeader names, in the answer to GET /events (or /chat/events),
	// the stream's id: POST /events/{id} (or /chat/events/{id}) talks to it.
	StreamHeader = "X-Protolab-Stream"

	// SSEHello is a stream's first event, sent at once: JSON naming the app
	// and the stream (and, on a chat stream, the chat and the member).
	SSEHello = "hello"
	// SSEEcho is a message POSTed to the stream, as it came.
	SSEEcho = "echo"
	// SSEChat is one message of the chat room a chat stream relays: JSON
	// (kind, from, text, line).
	SSEChat = "chat"
	// SSEEnd is a chat stream's last event when its chat ended it (the
	// upstream closed or dropped the member): JSON saying why.
	SSEEnd = "end"
)
