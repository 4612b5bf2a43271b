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

	// RouteNone is the route label of a request no route matched.
	RouteNone = "none"

	MetricIn       = "in"
	MetricOut      = "out"
	MetricSent     = "sent"
	MetricReceived = "received"
)
