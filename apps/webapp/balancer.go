package webapp

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"

	"github.com/protolab/protolab-tui/protocol"
)

// balancer is an HTTP-aware load balancer (kind balancer): it forwards each
// request, WebSocket upgrades included, to one of its replicas — round robin,
// or with affinity the one a client's cookie names — and says which one in
// the protocol.ReplicaHeader response header. It checks each replica's GET
// /health every HealthInterval and sends nothing to one that fails; a
// replica that refuses a connection is taken out at once and the request
// goes to another.
type balancer struct {
	s        *Server
	replicas []*replica
	affinity bool
	proxy    *httputil.ReverseProxy
	client   *http.Client // health checks

	mu   sync.Mutex
	next int

	stopOnce sync.Once
	stopped  chan struct{}
	done     chan struct{}
}

type replica struct {
	Upstream
	mu      sync.Mutex
	healthy bool
	why     string // why it is out, when it is
}

func (r *replica) up() bool { r.mu.Lock(); defer r.mu.Unlock(); return r.healthy }

// set records the replica's health and reports whether it changed.
func (r *replica) set(ok bool, why string) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	changed := r.healthy != ok
	r.healthy, r.why = ok, why
	return changed
}

// pick is the replica a request goes to, kept in its context so the
// transport (which may move it) and the response (which names it) agree.
type pick struct{ r *replica }

type pickKey struct{}

func routeBalancer(s *Server, mux *http.ServeMux) {
	b := &balancer{s: s, affinity: s.cfg.Affinity == "cookie", stopped: make(chan struct{}), done: make(chan struct{})}
	for _, u := range s.cfg.Upstreams {
		// Healthy until a check says otherwise: the lab starts the replicas
		// first, and a refused connection takes one out at once anyway.
		b.replicas = append(b.replicas, &replica{Upstream: u, healthy: true})
	}
	b.client = &http.Client{Timeout: 2 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	b.proxy = &httputil.ReverseProxy{
		Rewrite: func(pr *httputil.ProxyRequest) {
			p := pr.In.Context().Value(pickKey{}).(*pick)
			pr.SetURL(urlFor(p.r.Upstream))
			pr.Out.Host = pr.In.Host
			pr.SetXForwarded()
		},
		Transport:      &retryTransport{b: b, next: http.DefaultTransport.(*http.Transport).Clone()},
		ModifyResponse: b.modifyResponse,
		ErrorHandler:   b.errorHandler,
		ErrorLog:       nil,
	}
	s.healthy = b.health
	s.stops = append(s.stops, b.stop)
	mux.Handle("/", b)
	go b.checkLoop()
}

func urlFor(u Upstream) *url.URL { return &url.URL{Scheme: "http", Host: u.Addr} }

// ServeHTTP picks a replica and forwards.
func (b *balancer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	var pinned string
	if b.affinity {
		if c, err := r.Cookie(protocol.AffinityCookie); err == nil {
			pinned = c.Value
		}
	}
	rep, err := b.choose(pinned, nil)
	if err != nil {
		b.s.log.Warn("no replica to forward to", "path", r.URL.Path, "err", err)
		http.Error(w, err.Error(), http.StatusServiceUnavailable)
		return
	}
	if pinned != "" && rep.Name != pinned {
		b.s.log.Info("pinned replica is out: client moved", "from", pinned, "to", rep.Name)
	}
	p := &pick{r: rep}
	b.proxy.ServeHTTP(w, r.WithContext(context.WithValue(r.Context(), pickKey{}, p)))
}

// choose is the pinned replica when it is up, else the next healthy one
// round robin (skipping those in not).
func (b *balancer) choose(pinned string, not map[*replica]bool) (*replica, error) {
	if pinned != "" {
		for _, r := range b.replicas {
			if r.Name == pinned && r.up() && !not[r] {
				return r, nil
			}
		}
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	for i := range b.replicas {
		r := b.replicas[(b.next+i)%len(b.replicas)]
		if r.up() && !not[r] {
			b.next = (b.next + i + 1) % len(b.replicas)
			return r, nil
		}
	}
	var why []string
	for _, r := range b.replicas {
		r.mu.Lock()
		why = append(why, r.Name+": "+r.why)
		r.mu.Unlock()
	}
	return nil, fmt.Errorf("no healthy replica (%s)", strings.Join(why, "; "))
}

func (b *balancer) modifyResponse(res *http.Response) error {
	p := res.Request.Context().Value(pickKey{}).(*pick)
	res.Header.Set(protocol.ReplicaHeader, p.r.Name)
	if b.affinity {
		c := &http.Cookie{Name: protocol.AffinityCookie, Value: p.r.Name, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode}
		res.Header.Add("Set-Cookie", c.String())
	}
	return nil
}

func (b *balancer) errorHandler(w http.ResponseWriter, r *http.Request, err error) {
	p := r.Context().Value(pickKey{}).(*pick)
	b.s.log.Warn("forwarding failed", "replica", p.r.Name, "path", r.URL.Path, "err", err)
	w.Header().Set(protocol.ReplicaHeader, p.r.Name)
	http.Error(w, "replica "+p.r.Name+": "+err.Error(), http.StatusBadGateway)
}

// retryTransport sends to the picked replica; when that one refuses the
// connection (nothing was sent), it takes it out and tries the next.
type retryTransport struct {
	b    *balancer
	next http.RoundTripper
}

func (t *retryTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	p := req.Context().Value(pickKey{}).(*pick)
	tried := map[*replica]bool{}
	for {
		res, err := t.next.RoundTrip(req)
		var op *net.OpError
		if err == nil || !errors.As(err, &op) || op.Op != "dial" || req.Context().Err() != nil {
			return res, err
		}
		tried[p.r] = true
		if p.r.set(false, err.Error()) {
			t.b.s.log.Warn("replica refused a connection: taken out", "replica", p.r.Name, "err", err)
		}
		r, cerr := t.b.choose("", tried)
		if cerr != nil {
			return nil, err
		}
		if req.Body != nil && req.Body != http.NoBody {
			if req.GetBody == nil {
				return nil, err
			}
			body, berr := req.GetBody()
			if berr != nil {
				return nil, err
			}
			req = req.Clone(req.Context())
			req.Body = body
		} else {
			req = req.Clone(req.Context())
		}
		t.b.s.log.Info("replica is out: client moved", "from", p.r.Name, "to", r.Name)
		p.r = r
		req.URL.Host = r.Addr
	}
}

// health is the balancer's own GET /health: ok while a replica is up.
func (b *balancer) health() error {
	_, err := b.choose("", nil)
	return err
}

func (b *balancer) checkLoop() {
	defer close(b.done)
	t := time.NewTicker(b.s.cfg.HealthInterval)
	defer t.Stop()
	for {
		select {
		case <-b.stopped:
			return
		case <-t.C:
		}
		var wg sync.WaitGroup
		for _, r := range b.replicas {
			wg.Add(1)
			go func() {
				defer wg.Done()
				b.check(r)
			}()
		}
		wg.Wait()
	}
}

func (b *balancer) check(r *replica) {
	ctx, cancel := context.WithTimeout(context.Background(), b.s.cfg.HealthInterval+time.Second)
	defer cancel()
	go func() {
		select {
		case <-b.stopped:
			cancel()
		case <-ctx.Done():
		}
	}()
	req, _ := http.NewRequestWithContext(ctx, http.MethodGet, "http://"+r.Addr+"/health", nil)
	res, err := b.client.Do(req)
	why := ""
	switch {
	case err != nil:
		why = err.Error()
	case res.StatusCode != http.StatusOK:
		why = "GET /health answered " + res.Status
	}
	if res != nil {
		res.Body.Close()
	}
	select {
	case <-b.stopped:
		return
	default:
	}
	if r.set(why == "", why) {
		if why == "" {
			b.s.log.Info("replica healthy again: back in", "replica", r.Name)
		} else {
			b.s.log.Warn("replica failed its health check: taken out", "replica", r.Name, "err", why)
		}
	}
}

func (b *balancer) stop(context.Context) {
	b.stopOnce.Do(func() { close(b.stopped) })
	<-b.done
}
