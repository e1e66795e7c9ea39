package discovery

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/corekit/corekit/internal/v2api"
)

// clusterError is a transport failure or a 5xx answer: the only errors that
// are retried with backoff (etcd's client.ClusterError).
type clusterError struct{ err error }

func (e *clusterError) Error() string  { return e.err.Error() }
func (e *clusterError) Unwrap() error  { return e.err }
func (e *clusterError) Detail() string { return "error #0: " + e.err.Error() }

// response is a decoded successful keys answer.
type response struct {
	event v2api.Event
	index uint64 // X-Etcd-Index
}

// client speaks the subset of the v2 keys API discovery needs, with the
// token path used verbatim (no /v2/keys prefix is added).
type client struct {
	hc         *http.Client
	base       string // scheme://host
	reqTimeout time.Duration
}

func defaultHTTPClient(proxy string) (*http.Client, error) {
	t := &http.Transport{
		DialContext:         (&net.Dialer{Timeout: 30 * time.Second, KeepAlive: 30 * time.Second}).DialContext,
		TLSHandshakeTimeout: 10 * time.Second,
	}
	if proxy != "" {
		if !strings.Contains(proxy, "://") {
			proxy = "http://" + proxy
		}
		u, err := url.Parse(proxy)
		if err != nil {
			return nil, fmt.Errorf("discovery: invalid discovery proxy %q: %w", proxy, err)
		}
		t.Proxy = http.ProxyURL(u)
	}
	return &http.Client{Transport: t}, nil
}

// get reads a key: GET <p>?quorum=false&recursive=false&sorted=false.
func (c *client) get(ctx context.Context, p string) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.reqTimeout)
	defer cancel()
	return c.do(ctx, http.MethodGet, p+"?quorum=false&recursive=false&sorted=false", nil, false)
}

// create writes a key that must not exist: PUT <p>?prevExist=false.
func (c *client) create(ctx context.Context, p, value string) (*response, error) {
	ctx, cancel := context.WithTimeout(ctx, c.reqTimeout)
	defer cancel()
	body := "value=" + url.QueryEscape(value)
	return c.do(ctx, http.MethodPut, p+"?prevExist=false", strings.NewReader(body), false)
}

// watch waits for the first event at or after waitIndex. An empty 200 (a
// server-side long-poll timeout) re-polls. It has no timeout of its own.
func (c *client) watch(ctx context.Context, p string, waitIndex uint64, recursive bool) (*response, error) {
	q := "?recursive=" + strconv.FormatBool(recursive) + "&wait=true&waitIndex=" + strconv.FormatUint(waitIndex, 10)
	for {
		r, err := c.do(ctx, http.MethodGet, p+q, nil, true)
		if r == nil && err == nil {
			continue
		}
		return r, err
	}
}

// do performs one request. With emptyOK, a 200 without a body returns
// (nil, nil).
func (c *client) do(ctx context.Context, method, pathQuery string, body io.Reader, emptyOK bool) (*response, error) {
	u := c.base + pathQuery
	req, err := http.NewRequestWithContext(ctx, method, u, body)
	if err != nil {
		return nil, fmt.Errorf("discovery: %w", err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("discovery: %s %s: %w", method, u, ctx.Err())
		}
		return nil, &clusterError{err: err}
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		if ctx.Err() != nil {
			return nil, fmt.Errorf("discovery: %s %s: %w", method, u, ctx.Err())
		}
		return nil, &clusterError{err: err}
	}
	switch {
	case resp.StatusCode == http.StatusInternalServerError || resp.StatusCode == http.StatusServiceUnavailable:
		return nil, &clusterError{err: fmt.Errorf("client: etcd member %s has no leader", c.base)}
	case resp.StatusCode/100 == 5:
		return nil, &clusterError{err: fmt.Errorf("client: etcd member %s returns server error [%s]", c.base, http.StatusText(resp.StatusCode))}
	case resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusCreated:
		if len(b) == 0 {
			if emptyOK {
				return nil, nil
			}
			return nil, fmt.Errorf("%w: empty response body", ErrBadDiscoveryEndpoint)
		}
		r := &response{}
		if err := json.Unmarshal(b, &r.event); err != nil || r.event.Node == nil {
			return nil, ErrBadDiscoveryEndpoint
		}
		r.index, _ = strconv.ParseUint(resp.Header.Get(v2api.HeaderEtcdIndex), 10, 64)
		return r, nil
	default:
		var e v2api.Error
		if err := json.Unmarshal(b, &e); err != nil || e.ErrorCode == 0 {
			return nil, ErrBadDiscoveryEndpoint
		}
		return nil, &e
	}
}

func asV2Error(err error, code int) (*v2api.Error, bool) {
	var e *v2api.Error
	if errors.As(err, &e) && e.ErrorCode == code {
		return e, true
	}
	return nil, false
}
