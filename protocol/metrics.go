package protocol

// The names of the metrics an app serves at MetricsPath (Prometheus text
// format). The apps register them; the lab reads them back to show a few
// live numbers, so both sides spell them from here.
const (
	// MetricsPath is the route of an app's metrics (on kinds whose Kind.Metrics
	// is set).
	MetricsPath = "/metrics"

	// MetricAppInfo is a gauge of 1 labelled app, kind, protocol and version.
	MetricAppInfo = "protolab_app_info"
	// MetricRequests counts HTTP requests, labelled route (the server's
	// route pattern, or RouteNone when no route matched) and code (the
	// status sent; 101 for a WebSocket upgrade).
	MetricRequests = "protolab_http_requests_total"
	// MetricRequestDuration is a histogram of the time to answer a request,
	// labelled route: to the last byte of an HTTP answer, to the upgrade
	// for a WebSocket (a connection's lifetime is no request's latency).
	MetricRequestDuration = "protolab_http_request_duration_seconds"
	// MetricWSOpen is a gauge of the WebSocket connections open now.
	MetricWSOpen = "protolab_websocket_connections_open"
	// MetricWSConnections counts WebSocket connections accepted, by route.
	MetricWSConnections = "protolab_websocket_connections_total"
	// MetricWSMessages counts WebSocket data messages, labelled direction
	// (MetricIn: from the app's clients, MetricOut: to them).
	MetricWSMessages = "protolab_websocket_messages_total"
	// MetricWSCloses counts WebSocket Close frames, labelled direction
	// (MetricSent, MetricReceived) and code (the close code; "none" for a
	// Close frame without one, "invalid" for one that broke the rules,
	// "3xxx"/"4xxx" for the registered and private ranges).
	MetricWSCloses = "protolab_websocket_close_codes_total"

	// MetricSSEOpen is a gauge of the server-sent event streams open now
	// (an sse app's GET /events and /chat/events).
	MetricSSEOpen = "protolab_sse_streams_open"
	// MetricSSEEvents counts the events an sse app sent, labelled event (the
	// event's type: SSEHello, SSEEcho, SSEChat, SSEEnd); keep-alive comments
	// are no events.
	MetricSSEEvents = "protolab_sse_events_total"

	// MetricGRPCCalls counts a grpc app's finished calls, labelled method
	// (the full method, "/protolab.Echo/Say": only the server's registered
	// methods, an unknown one is answered before it is counted) and code
	// (the gRPC status code's name, "OK", "AlreadyExists", …).
	MetricGRPCCalls = "protolab_grpc_calls_total"
	// MetricGRPCMessages counts gRPC messages, labelled direction (MetricIn:
	// from the app's clients, MetricOut: to them).
	MetricGRPCMessages = "protolab_grpc_messages_total"
	// MetricGRPCStreamsOpen is a gauge of the gRPC streaming calls open now
	// (a chat member's Join, a health Watch).
	MetricGRPCStreamsOpen = "protolab_grpc_streams_open"

	// RouteNone is the route label of a request no route matched.
	RouteNone = "none"

	MetricIn       = "in"
	MetricOut      = "out"
	MetricSent     = "sent"
	MetricReceived = "received"
)
